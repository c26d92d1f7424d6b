"""Commands of the ingest stage: fetch feeds, import and list articles, feeds' health, check
one feed."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from digest import pipeline
from digest.cli._app import (
    Format,
    JsonOpt,
    app,
    articles_app,
    context,
    emit_json,
    err,
    errors,
    out,
    print_rows,
)
from digest.errors import FeedError, RowsRejected

if TYPE_CHECKING:
    from digest.feeds.check import FeedCheck
    from digest.ingest import FeedOutcome

feeds_app = typer.Typer(
    help="The newsletter's feeds: their health; check one feed.", no_args_is_help=True
)
app.add_typer(feeds_app, name="feeds")


@app.command()
def fetch(as_json: JsonOpt = False) -> None:
    """Fetch every feed of the newsletter and store the new articles."""

    def report(feed: FeedOutcome) -> None:
        if as_json:
            return
        if feed.error:
            err.print(f"[red]feed failed[/red] {feed.url}: {feed.error}", markup=True)
        else:
            out.print(
                f"{feed.section:<20} {feed.status:<13} +{feed.added} new, "
                f"{feed.updated} updated ({feed.entries} entries)  {feed.url}",
                markup=False,
            )
        for warning in feed.warnings:
            err.print(f"  warning: {warning}", markup=False)

    with context() as ctx:
        result = pipeline.fetch(ctx, pipeline.utcnow(), on_feed=report)
    if as_json:
        emit_json(
            {
                "added": result.added,
                "updated": result.updated,
                "failed": result.failed,
                "parsed": result.parses,
                "feeds": [dataclasses.asdict(f) for f in result.feeds],
            }
        )
    else:
        out.print(
            f"{result.added} new articles, {result.updated} updated, {result.failed} feed(s) failed"
        )
    if result.failed and result.failed == len(result.feeds):
        raise typer.Exit(FeedError.exit_code)


@articles_app.command("import")
def articles_import(path: Annotated[Path, typer.Argument(help="A JSON-lines file.")]) -> None:
    """Import articles from JSON lines: section, title, url; summary, byline, dateline,
    image, published_at, guid optional. Bad lines are reported; good ones are kept."""
    with context() as ctx:
        added, updated, rejects = pipeline.import_articles(ctx, path, pipeline.utcnow())
    for line, reason in rejects:
        err.print(f"{path}:{line}: {reason}", markup=False)
    out.print(f"{added} new articles, {updated} updated, {len(rejects)} line(s) rejected")
    if rejects:
        raise typer.Exit(RowsRejected.exit_code)


@articles_app.command("list")
def articles_list(
    section: Annotated[str | None, typer.Option(help="Only this section.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 30,
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """List stored articles, newest first, with the id `digest editions` names them by."""
    with context() as ctx:
        items = pipeline.list_articles(ctx, section=section, limit=limit)
    rows = [
        {
            "id": a.id,  # what `digest editions pin` and `lead` name an article by
            "section": a.section,
            "title": a.title,
            "url": a.url,
            "published_at": a.published_at.isoformat() if a.published_at else None,
            "first_seen_at": a.first_seen_at.isoformat() if a.first_seen_at else None,
        }
        for a in items
    ]
    print_rows(rows, fmt, ["id", "first_seen_at", "section", "title", "url"])


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


@feeds_app.command("list")
def feeds_list(fmt: Annotated[Format, typer.Option("--format")] = Format.table) -> None:
    """Each feed's last status, last success, entries, failures in a row and last error;
    FLAG marks a feed failing for DIGEST_FEED_FAILING_DAYS days or more (FAILING), or whose
    newest entry is older than DIGEST_FEED_STALE_DAYS days (STALE)."""
    with context() as ctx:
        rows = [
            {
                "section": h.section,
                "url": h.url,
                "status": h.status or "never fetched",
                "last_success": _when(h.last_success_at),
                "entries": h.entries,
                "failures": h.failures,
                "failing_since": _when(h.failing_since),
                "flag": " ".join(f for f, on in (("FAILING", h.flagged), ("STALE", h.stale)) if on),
                "newest_entry": _when(h.newest_entry_at),
                "error": h.error,
            }
            for h in pipeline.feed_health(ctx, pipeline.utcnow())
        ]
    print_rows(
        rows,
        fmt,
        [
            *("section", "status", "last_success", "entries", "newest_entry", "failures"),
            *("flag", "url", "error"),
        ],
    )


@feeds_app.command("check")
def feeds_check(
    source: Annotated[str, typer.Argument(help="A feed URL or file path.")],
    as_json: JsonOpt = False,
) -> None:
    """Fetch and parse one feed, store nothing: show what digest would take from it and
    every problem found. Exits 4 only when the feed is unusable, with the reason."""
    from digest.config import load_settings

    with errors():
        report = pipeline.check_feed(load_settings(), source, pipeline.utcnow())
    if as_json:
        emit_json(dataclasses.asdict(report))
    else:
        _print_check(report)
    if not report.usable:
        if not as_json:
            err.print(f"unusable: {report.source}: {report.reason}", markup=False)
        raise typer.Exit(FeedError.exit_code)


def _print_check(report: FeedCheck) -> None:
    if not report.usable and report.title is None:
        return
    response = (
        f"HTTP {report.http_status} {report.content_type or ''}".rstrip()
        if report.http_status
        else "local file"
    )
    out.print(
        f"{report.title} ({report.version or 'unknown format'}): {response}, "
        f"{report.bytes} bytes in {report.elapsed:.2f} s, ETag "
        f"{'yes' if report.etag else 'no'}, Last-Modified "
        f"{'yes' if report.last_modified else 'no'}",
        markup=False,
    )
    out.print(f"{len(report.entries)} of {report.entries_in_document} entries usable", markup=False)
    for e in report.entries:
        details = [f"{e.summary_chars} chars of summary", "image" if e.image else "no image"]
        details += [f"by {e.byline}"] if e.byline else []
        details += [f"section {e.section}"] if e.section else []
        out.print(f"- {_when(e.date) or 'undated':<16}  {e.title}", markup=False)
        out.print(f"  {'; '.join(details)}\n  {e.link}", markup=False)
    for problem in report.problems:
        err.print(f"problem: {problem}", markup=False)
