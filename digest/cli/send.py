"""The daily job: send today's edition; and `digest status`, where an edition stands."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, NoReturn

import typer

from digest import pipeline
from digest.cli._app import (
    EveryListOpt,
    JsonOpt,
    ListOpt,
    app,
    context,
    counted,
    each_list,
    emit_json,
    err,
    errors,
    out,
)
from digest.errors import ConfigError
from digest.exits import ExitCode, command_help, most_serious
from digest.states import TEST_SUBJECT_PREFIX, DeliveryState


def _progress_printer(
    lines: bool,
) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """A rich progress bar (rate, ETA) on a terminal; else, with ``lines`` (--progress), a log
    line on stderr at each 10%; else nothing (under cron a quiet success mails nobody)."""
    if err.is_terminal:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(
            "sending",
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        task = None
        started = time.monotonic()

        def update(done: int, total: int) -> None:
            nonlocal task
            if task is None:
                bar.start()
                task = bar.add_task("send", total=total, rate="")
            elapsed = time.monotonic() - started
            rate = f"{done / elapsed:.0f} msg/s" if elapsed > 0 else ""
            bar.update(task, completed=done, rate=rate)
            if done >= total:
                bar.stop()

        return update, bar.stop
    last = [0]
    started = time.monotonic()

    def log(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth != last[0]:
            last[0] = tenth
            elapsed = time.monotonic() - started
            rate = done / elapsed if elapsed > 0 else 0.0
            eta = f", ETA {(total - done) / rate:.0f} s" if rate > 0 and done < total else ""
            typer.echo(f"progress: {done}/{total} ({tenth * 10}%), {rate:.0f} msg/s{eta}", err=True)

    return (log if lines else None), lambda: None


@app.command(
    help=command_help(
        "Send today's edition of each list (--list: of that one). Safe to run again: nobody "
        "gets it twice.\n\n"
        "With several lists, each is sent in turn (--json: one line per list) and the exit code "
        "is the most serious of the lists'.\n\n"
        "Progress goes to stderr: a bar on a terminal; elsewhere (cron) nothing, or a line at "
        "each 10% with --progress. Errors are one line on stderr.\n\n"
        "With --to, a test copy of each list's edition as it stands goes to those addresses "
        "only, its subject prefixed: nothing is recorded and no reader is mailed.",
        ExitCode.OK,
        ExitCode.INCOMPLETE,
        ExitCode.FAILED,
        ExitCode.STOPPED,
        ExitCode.CHECK,
        ExitCode.LOCKED,
        ExitCode.CONFIG,
        ExitCode.STORE,
        ExitCode.SUBSCRIBER,
        ExitCode.SELECTION,
        ExitCode.SEND,
    )
)
def send(
    lst: EveryListOpt = None,
    as_json: JsonOpt = False,
    dry_run: Annotated[
        bool, typer.Option(help="Compose every message, send nothing, leave the ledger untouched.")
    ] = False,
    resend_unknown: Annotated[
        bool | None,
        typer.Option(
            "--resend-unknown/--no-resend-unknown",
            show_default=False,
            help="Resend messages whose delivery is unknown, with the same Message-ID "
            "(default: DIGEST_SEND_RESEND_UNKNOWN, off).",
        ),
    ] = None,
    progress_lines: Annotated[
        bool,
        typer.Option(
            "--progress",
            help="Without a terminal (cron), log a progress line on stderr at each 10%.",
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            show_default=False,
            help="Worker processes sending the edition together, each with its own relay "
            "connections and a share of each relay's rate (default: "
            "DIGEST_SEND_WORKERS, 1). Needs PostgreSQL; on SQLite one runs.",
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="ADDR[,ADDR...]",
            show_default=False,
            help="Send a test copy of the edition as it stands to these addresses only: "
            "nothing recorded, the edition neither created nor frozen. Refused for an "
            "address that unsubscribed, bounced, complained or was erased.",
        ),
    ] = None,
    as_email: Annotated[
        str | None,
        typer.Option(
            "--as",
            metavar="EMAIL",
            show_default=False,
            help="With --to: that subscriber's sections and name (default: a sample reader "
            "with every section). Its links act for nobody.",
        ),
    ] = None,
    subject_prefix: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            help=f"With --to: put this before the subject (default: {TEST_SUBJECT_PREFIX!r}).",
        ),
    ] = None,
) -> None:
    import asyncio  # here: a command that sends nothing need not load it

    if to is not None:
        with errors():
            if dry_run or workers is not None or resend_unknown is not None:
                raise ConfigError(
                    "--to sends test copies only: --dry-run, --workers and --resend-unknown "
                    "do not go with it"
                )
        _test_send(lst, to, as_email, subject_prefix, as_json)
    if as_email is not None or subject_prefix is not None:
        with errors():
            raise ConfigError("--as and --subject-prefix go with --to ADDR")
    codes: list[int] = []
    with context() as ctx:
        names = ctx.lists_covered(lst)

        def send_one(name: str | None) -> list[pipeline.SendReport]:
            """Every series of the list: its own edition, then those of the readers who
            chose another frequency."""
            reports = []
            for frequency in pipeline.series_to_send(ctx, name):
                progress, stop = _progress_printer(progress_lines)
                try:
                    reports.append(
                        asyncio.run(
                            pipeline.send(
                                ctx,
                                name,
                                dry_run=dry_run,
                                resend_unknown=resend_unknown,
                                on_progress=progress,
                                workers=workers,
                                frequency=frequency,
                            )
                        )
                    )
                finally:
                    stop()
            return reports

        # One list's fault leaves the others to be sent; it counts in the exit code.
        for _name, summaries in each_list(names, send_one, codes, as_json):
            for summary in summaries:
                if as_json:
                    emit_json(summary.as_dict())
                else:
                    _print_summary(summary)
                codes.append(summary.exit_code)
    raise typer.Exit(most_serious(codes))


def _test_send(
    lst: str | None, to: str, as_email: str | None, prefix: str | None, as_json: bool
) -> NoReturn:
    """`digest send --to`: test copies of each list's edition (of --list's)."""
    import asyncio  # here: a command that sends nothing need not load it

    codes: list[int] = []
    with context() as ctx:
        # Checked once, before any list's copies go.
        prefix = pipeline.check_prefix(TEST_SUBJECT_PREFIX if prefix is None else prefix)
        addresses = pipeline.proof_addresses(to)
        names = ctx.lists_covered(lst)
        proofs = each_list(
            names,
            lambda name: asyncio.run(
                pipeline.send_proofs(ctx, name, addresses, as_email=as_email, subject_prefix=prefix)
            ),
            codes,
            as_json,
        )
        for _name, report in proofs:
            codes.append(report.exit_code)
            if as_json:
                emit_json(report.as_dict())
            else:
                _print_proofs(report)
    raise typer.Exit(most_serious(codes))


def _print_proofs(r: pipeline.ProofReport) -> None:
    for warning in r.warnings:
        err.print(f"warning: {warning}", markup=False)
    for note in r.notes:
        out.print(f"trimmed: {note}", markup=False)
    whose = "a sample reader" if r.reader == "sample reader" else r.reader
    out.print(
        f"list {r.list}, edition {r.edition}: test copy as {whose} ({', '.join(r.sections)}), "
        f"subject {r.subject!r}, via {r.transport}",
        markup=False,
    )
    for copy in r.copies:
        reply = f": {copy['reply']}" if copy["reply"] else ""
        out.print(f"  {copy['state']} {copy['to']}{reply}", markup=False)
    out.print("nothing recorded: the ledger and the edition are as they were", markup=False)


def _print_summary(s: pipeline.SendReport) -> None:
    for earlier in s.earlier:  # an older edition still in flight, sent by the same run
        _print_summary(earlier)
    for warning in s.feed_warnings + s.warnings:
        err.print(f"warning: {warning}", markup=False)
    if s.status in (pipeline.SendStatus.skipped, pipeline.SendStatus.not_due):
        out.print(f"list {s.list}, edition {s.edition}: {s.message}", markup=False)
        return
    if s.status is pipeline.SendStatus.locked:
        err.print(s.message, markup=False)
        return
    for note in s.notes:
        out.print(f"trimmed: {note}", markup=False)
    if s.status is pipeline.SendStatus.check_failed:
        for finding in s.findings:
            if finding["severity"] == "error":
                err.print(f"error: {finding['where']}: {finding['what']}", markup=False)
        err.print(f"list {s.list}, edition {s.edition}: {s.message}", markup=False)
        return
    sections = ", ".join(f"{k} {v}" for k, v in s.articles.items())
    out.print(
        f"list {s.list}, edition {s.edition}: "
        f"{counted(sum(s.articles.values()), 'article')} ({sections})",
        markup=False,
    )
    if s.status is pipeline.SendStatus.dry_run:
        out.print(
            f"{counted(s.recipients, 'recipient')}, {counted(s.sent, 'message')} composed "
            f"({counted(s.variants, 'variant')}, {s.bytes} bytes), {s.skipped} skipped, "
            f"sent before {s.already_sent}. {s.message}",
            markup=False,
        )
        return
    out.print(
        f"recipients {s.recipients}: sent {s.sent}, deferred {s.deferred}, failed "
        f"{s.failed}, unknown {s.unknown}, skipped {s.skipped}, sent before "
        f"{s.already_sent} ({s.rate:.0f} msg/s via {s.transport})",
        markup=False,
    )
    if s.waiting:
        out.print(f"waiting {s.waiting}: the next due {s.next_due}", markup=False)
    if s.stopped:
        err.print(
            f"stopped: {s.stopped}; the next run resumes where this one stopped", markup=False
        )
    if s.retries or s.suppressed:
        out.print(
            f"retried within the run {s.retries}; addresses suppressed (no such user) "
            f"{s.suppressed}",
            markup=False,
        )
    for w in s.workers:
        if "sent" in w:
            out.print(
                f"  worker {w['pid']}: sent {w['sent']}, deferred {w['deferred']}, "
                f"failed {w['failed']}, unknown {w['unknown']}, peak memory "
                f"{w['peak_rss_mb']:g} MB",
                markup=False,
            )
    if s.taken_over or s.lost_leases:
        out.print(
            f"taken over from workers whose lease expired {s.taken_over}; lost to "
            f"others {s.lost_leases}",
            markup=False,
        )
    if s.limit:
        out.print(f"rate {s.rate:.1f} msg/s of the {s.limit:g} msg/s configured", markup=False)


@app.command()
def status(
    lst: ListOpt = None,
    as_json: JsonOpt = False,
    edition: Annotated[
        str | None, typer.Option(help="The edition key, e.g. 2026-11-26 (default: the latest).")
    ] = None,
) -> None:
    """Show an edition's delivery ledger: counts by state, latest errors, a run in progress."""
    with context() as ctx:
        report = pipeline.send_status(ctx, lst, edition)
    if as_json:
        emit_json(report)
        return
    out.print(
        f"list {report['list']}, edition {report['edition']}: {report['status']}, "
        f"{counted(report['total'], 'recipient')}",
        markup=False,
    )
    if report["running"]:
        out.print(f"a run is sending it now ({report['running']})", markup=False)
    if report["waiting"]:
        out.print(
            f"{report['waiting']} waiting for their zone's send time; the next due "
            f"{report['next_due']}",
            markup=False,
        )
    for w in report["workers"]:
        out.print(
            f"worker {w['run_id'][:8]} on {w['host']} (pid {w['pid']}) since "
            f"{w['started_at']:%Y-%m-%d %H:%M:%S}, relays {' '.join(w['relays'])}",
            markup=False,
        )
    from rich.table import Table

    table = Table("state", "rows", show_lines=False)
    for state in DeliveryState:
        if report["counts"].get(state):
            table.add_row(state, str(report["counts"][state]))
    out.print(table)
    if report["errors"]:
        out.print("latest problems:", markup=False)
        for e in report["errors"]:
            code = f"{e['code']} " if e["code"] else ""
            out.print(f"  {e['state']:<8} {e['email']}: {code}{e['reply'] or ''}", markup=False)
