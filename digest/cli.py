"""The command line: parses arguments, calls ``digest.pipeline``, prints the result.

No logic lives here. Errors are one line on stderr (``error: ...``) with the error's exit code;
``--verbose`` adds the traceback. ``asyncio.run`` is called here and nowhere else.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import json
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from digest import __version__, pipeline
from digest import subscribers as subs
from digest.config import load_settings
from digest.errors import DigestError, ImportError_
from digest.models import SubscriberStatus

app = typer.Typer(help="digest: daily newsletter digests for sectioned news sites.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
articles_app = typer.Typer(help="Ingested articles: import from a file, list.",
                           no_args_is_help=True)
subscribers_app = typer.Typer(help="Manage subscribers: add, remove, import, export, list.",
                              no_args_is_help=True)
app.add_typer(articles_app, name="articles")
app.add_typer(subscribers_app, name="subscribers")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
_state = {"verbose": False}


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


ListOpt = Annotated[Optional[str], typer.Option("--list", "-l",
                                                help="The list (default: the only one).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


@contextmanager
def _errors() -> Iterator[None]:
    """Turn errors into one line on stderr and an exit code."""
    try:
        yield
    except typer.Exit:
        raise
    except DigestError as exc:
        if _state["verbose"]:
            traceback.print_exc()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: the next run resumes where this one stopped", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:  # a bug: still one line, details behind --verbose
        if _state["verbose"]:
            traceback.print_exc()
        typer.echo(f"error: unexpected {type(exc).__name__}: {exc} (run with --verbose for "
                   "details)", err=True)
        raise typer.Exit(1) from None


@contextmanager
def _context() -> Iterator[pipeline.Context]:
    with _errors():
        ctx = pipeline.Context.open()
        try:
            yield ctx
        finally:
            ctx.close()


def _json(obj) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False, default=str))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"digest {__version__}")
        raise typer.Exit()


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                                help="Show details (tracebacks) on errors.")] = False,
          version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False
          ) -> None:
    """Settings come from DIGEST_* environment variables and .env; the newsletter's lists and
    sections from digest.toml (DIGEST_CONFIG)."""
    _state["verbose"] = verbose


@app.command()
def init() -> None:
    """Create or upgrade the store, and write a .env with a new secret key if there is none."""
    with _errors():
        done = pipeline.init(load_settings())
    out.print(f"store ready: {done['database']}")
    if done["env_file"]:
        out.print(f"wrote a new secret key to {done['env_file']}")


@app.command()
def fetch(as_json: JsonOpt = False) -> None:
    """Fetch every feed of the newsletter and store the new articles."""
    def report(feed) -> None:
        if as_json:
            return
        if feed.error:
            err.print(f"[red]feed failed[/red] {feed.url}: {feed.error}", markup=True)
        else:
            out.print(f"{feed.section:<20} {feed.status:<13} +{feed.added} new, "
                      f"{feed.updated} updated ({feed.entries} entries)  {feed.url}")
        for warning in feed.warnings:
            err.print(f"  warning: {warning}", markup=False)

    with _context() as ctx:
        result = pipeline.fetch(ctx, pipeline.utcnow(), on_feed=report)
    if as_json:
        _json({"added": result.added, "updated": result.updated, "failed": result.failed,
               "feeds": [dataclasses.asdict(f) for f in result.feeds]})
    else:
        out.print(f"{result.added} new articles, {result.updated} updated, "
                  f"{result.failed} feed(s) failed")
    if result.failed and result.failed == len(result.feeds):
        raise typer.Exit(4)


@articles_app.command("import")
def articles_import(path: Annotated[Path, typer.Argument(help="A JSON-lines file.")]) -> None:
    """Import articles from JSON lines: section, title, url; summary, byline, dateline,
    image, published_at, guid optional. Bad lines are reported; good ones are kept."""
    with _context() as ctx:
        added, updated, rejects = pipeline.import_articles(ctx, path, pipeline.utcnow())
    for line, reason in rejects:
        err.print(f"{path}:{line}: {reason}", markup=False)
    out.print(f"{added} new articles, {updated} updated, {len(rejects)} line(s) rejected")
    if rejects:
        raise typer.Exit(ImportError_.exit_code)


@articles_app.command("list")
def articles_list(section: Annotated[Optional[str], typer.Option(help="Only this section.")] = None,
                  limit: Annotated[int, typer.Option(help="At most this many.")] = 30,
                  fmt: Annotated[Format, typer.Option("--format")] = Format.table) -> None:
    """List stored articles, newest first."""
    with _context() as ctx:
        items = ctx.store.articles(section=section, limit=limit)
    rows = [{"section": a.section, "title": a.title, "url": a.url,
             "published_at": a.published_at.isoformat() if a.published_at else None,
             "first_seen_at": a.first_seen_at.isoformat()} for a in items]
    _print_rows(rows, fmt, ["first_seen_at", "section", "title", "url"])


def _print_rows(rows: list[dict], fmt: Format, columns: list[str]) -> None:
    if fmt is Format.json:
        for row in rows:
            _json(row)
    elif fmt is Format.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else columns,
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        table = Table(*columns, show_lines=False)
        for row in rows:
            table.add_row(*("" if row[c] is None else
                            ";".join(row[c]) if isinstance(row[c], list) else str(row[c])
                            for c in columns))
        out.print(table)
        out.print(f"{len(rows)} shown")


# -- subscribers ------------------------------------------------------------------------------

@subscribers_app.command("add")
def subscribers_add(
        email: str,
        name: Annotated[str, typer.Option(help="The subscriber's name.")] = "",
        lists: Annotated[Optional[list[str]], typer.Option("--list", "-l",
                                                           help="A list (repeatable).")] = None,
        sections: Annotated[str, typer.Option(
            help="Section slugs, comma- or semicolon-separated (default: all).")] = "",
        force: Annotated[bool, typer.Option(help="Add even a suppressed address.")] = False,
) -> None:
    """Add a subscriber (active, with consent source 'cli')."""
    with _context() as ctx:
        sub = pipeline.add_subscriber(ctx, {"email": email, "name": name,
                                            "lists": ";".join(lists or []),
                                            "sections": sections}, pipeline.utcnow(), force=force)
    out.print(f"added {sub.email} to {', '.join(sub.lists)}", markup=False)


@subscribers_app.command("remove")
def subscribers_remove(email: str, erase: Annotated[bool, typer.Option(
        help="Delete all their data and keep only a hashed suppression entry.")] = False) -> None:
    """Delete a subscriber (see also `unsubscribe`, which keeps the record)."""
    with _context() as ctx:
        ctx.store.remove_subscriber(subs.normalize_email(email), pipeline.utcnow(), erase=erase)
    out.print(f"removed {email}" + (" and suppressed its hash" if erase else ""), markup=False)


def _set_status(email: str, status: SubscriberStatus) -> None:
    with _context() as ctx:
        sub = pipeline.set_status(ctx, email, status, pipeline.utcnow())
    out.print(f"{sub.email}: {sub.status.value}", markup=False)


@subscribers_app.command("unsubscribe")
def subscribers_unsubscribe(email: str) -> None:
    """Mark a subscriber unsubscribed: they get nothing more, even from a running send."""
    _set_status(email, SubscriberStatus.unsubscribed)


@subscribers_app.command("resubscribe")
def subscribers_resubscribe(email: str) -> None:
    """Make an unsubscribed subscriber active again (only with their consent)."""
    _set_status(email, SubscriberStatus.active)


@subscribers_app.command("list")
def subscribers_list(lst: ListOpt = None,
                     status: Annotated[Optional[SubscriberStatus], typer.Option()] = None,
                     fmt: Annotated[Format, typer.Option("--format")] = Format.table) -> None:
    """List subscribers, with their lists, sections and status."""
    with _context() as ctx:
        rows = [subs.as_dict(s) for s in ctx.store.subscribers(lst, status)]
    _print_rows(rows, fmt, ["email", "name", "status", "lists", "sections"])


@subscribers_app.command("show")
def subscribers_show(email: str, as_json: JsonOpt = False) -> None:
    """Show one subscriber: status and, per list, the sections they get."""
    with _context() as ctx:
        sub = ctx.store.subscriber(subs.normalize_email(email))
        if sub is None:
            typer.echo(f"error: no subscriber {email}", err=True)
            raise typer.Exit(6)
        prefs = ctx.store.subscriptions(sub.email)
    data = subs.as_dict(sub) | {"subscriptions": {k: (None if v is None else sorted(v))
                                                  for k, v in prefs.items()}}
    if as_json:
        _json(data)
        return
    out.print(f"{sub.email}  {sub.name}  [{sub.status.value}]", markup=False)
    for name, sections in data["subscriptions"].items():
        out.print(f"  {name}: {', '.join(sections) if sections else 'all sections'}",
                  markup=False)


@subscribers_app.command("import")
def subscribers_import(
        path: Annotated[Path, typer.Argument(help="A CSV (header row) or .jsonl file.")],
        dry_run: Annotated[bool, typer.Option(help="Check the file; store nothing.")] = False,
        skip_existing: Annotated[bool, typer.Option(
            help="Leave subscribers already stored as they are.")] = False,
        force: Annotated[bool, typer.Option(help="Import suppressed addresses too.")] = False,
        as_json: JsonOpt = False,
) -> None:
    """Import subscribers. Columns: email (required), name, lists, sections, status.
    Bad rows are reported with their line number; the good rows are stored in one
    transaction; the exit code is non-zero if any row was rejected."""
    with _context() as ctx:
        result = pipeline.import_subscribers(ctx, path, pipeline.utcnow(), dry_run=dry_run,
                                             existing="skip" if skip_existing else "update",
                                             force=force)
    for reject in result.rejected:
        err.print(f"{path}:{reject.line}: {reject.reason}", markup=False)
    if as_json:
        _json({"path": result.path, "rows": result.rows, "added": result.added,
               "updated": result.updated, "unchanged": result.skipped,
               "rejected": [{"line": r.line, "reason": r.reason} for r in result.rejected],
               "dry_run": dry_run})
    else:
        verb = "would import" if dry_run else "imported"
        out.print(f"{verb} {path}: {result.added} added, {result.updated} updated, "
                  f"{result.skipped} unchanged, {len(result.rejected)} rejected", markup=False)
    if result.rejected:
        raise typer.Exit(ImportError_.exit_code)


@subscribers_app.command("export")
def subscribers_export(lst: ListOpt = None,
                       output: Annotated[Optional[Path], typer.Option(
                           "--out", "-o", help="Write here instead of stdout.")] = None) -> None:
    """Export subscribers as CSV in the import format."""
    with _context() as ctx:
        items = ctx.store.subscribers(lst)
    if output is None:
        subs.write_csv(items, sys.stdout)
        return
    with open(output, "w", encoding="utf-8", newline="") as fh:
        count = subs.write_csv(items, fh)
    err.print(f"exported {count} subscribers to {output}", markup=False)


# -- preview and send -------------------------------------------------------------------------

@app.command()
def preview(lst: ListOpt = None,
            out_dir: Annotated[Path, typer.Option("--out", help="Folder for the files.")] =
            Path("preview"),
            subscriber: Annotated[Optional[str], typer.Option(
                help="Whose message (default: a sample reader with every section).")] = None
            ) -> None:
    """Write today's message for one recipient as HTML, plain text and .eml."""
    with _context() as ctx:
        result = pipeline.preview(ctx, lst, out_dir, now=pipeline.utcnow(),
                                  subscriber_email=subscriber)
    out.print(f"edition {result.edition} for {result.recipient}:", markup=False)
    for path in (result.html, result.text, result.eml):
        out.print(f"  {path.resolve()}", markup=False)


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
    with _context() as ctx:
        try:
            summary = asyncio.run(pipeline.send(ctx, lst, dry_run=dry_run,
                                                resend_unknown=resend_unknown,
                                                on_progress=None if as_json else progress))
        finally:
            stop()
    if as_json:
        _json(summary.as_dict())
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
