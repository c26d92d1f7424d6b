"""The daily job: send today's edition."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from digest import pipeline
from digest.cli._app import JsonOpt, ListOpt, app, context, emit_json, err, out

def _progress_printer():
    """A rich progress bar on a terminal; a log line at each 10% otherwise."""
    if err.is_terminal:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn,
                                   TimeRemainingColumn)
        bar = Progress("sending", BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                       TimeRemainingColumn(), console=err, transient=True)
        task = None

        def update(done: int, total: int) -> None:
            nonlocal task
            if task is None:
                bar.start()
                task = bar.add_task("send", total=total)
            bar.update(task, completed=done)
            if done >= total:
                bar.stop()
        return update, bar.stop
    last = [-1]

    def log(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth != last[0]:
            last[0] = tenth
            typer.echo(f"progress: {done}/{total} ({tenth * 10}%)", err=True)
    return log, lambda: None


@app.command()
def send(lst: ListOpt = None, as_json: JsonOpt = False,
         dry_run: Annotated[bool, typer.Option(
             help="Compose every message, send nothing, leave the ledger untouched.")] = False,
         resend_unknown: Annotated[bool, typer.Option(
             help="Resend messages whose delivery is unknown (same Message-ID).")] = False
         ) -> None:
    """Send today's edition. Safe to run again: nobody gets it twice.

    Exit codes: 0 all due messages delivered, or nothing to do; 10 some deferred or
    unknown (run again later); 11 some failed permanently; 12 the relay could not be
    used and the run stopped (the next run resumes); 2 configuration; 3 store."""
    progress, stop = _progress_printer()
    with context() as ctx:
        try:
            summary = asyncio.run(pipeline.send(ctx, lst, dry_run=dry_run,
                                                resend_unknown=resend_unknown,
                                                on_progress=None if as_json else progress))
        finally:
            stop()
    if as_json:
        emit_json(summary.as_dict())
    else:
        _print_summary(summary)
    raise typer.Exit(summary.exit_code)


def _print_summary(s: pipeline.SendSummary) -> None:
    if s.status == "skipped":
        out.print(f"list {s.list}, edition {s.edition}: {s.message}", markup=False)
        return
    sections = ", ".join(f"{k} {v}" for k, v in s.articles.items())
    out.print(f"list {s.list}, edition {s.edition}: {sum(s.articles.values())} articles "
              f"({sections})", markup=False)
    if s.status == "dry-run":
        out.print(f"{s.recipients} recipients, {s.recipients - s.skipped} messages composed "
                  f"({s.variants} variants, {s.bytes} bytes), {s.skipped} skipped. {s.message}",
                  markup=False)
        return
    out.print(f"recipients {s.recipients}: sent {s.sent}, deferred {s.deferred}, failed "
              f"{s.failed}, unknown {s.unknown}, skipped {s.skipped}, sent before "
              f"{s.already_sent} ({s.rate:.0f} msg/s via {s.transport})", markup=False)
    if s.stopped:
        err.print(f"stopped: {s.stopped}; the next run resumes where this one stopped",
                  markup=False)

