"""Commands of the ingest stage: fetch feeds, import and list articles."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer

from digest import pipeline
from digest.cli._app import (Format, JsonOpt, app, articles_app, context, emit_json, err, out,
                             print_rows)
from digest.errors import ImportError_

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

    with context() as ctx:
        result = pipeline.fetch(ctx, pipeline.utcnow(), on_feed=report)
    if as_json:
        emit_json({"added": result.added, "updated": result.updated, "failed": result.failed,
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
    with context() as ctx:
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
    with context() as ctx:
        items = ctx.store.articles(section=section, limit=limit)
    rows = [{"section": a.section, "title": a.title, "url": a.url,
             "published_at": a.published_at.isoformat() if a.published_at else None,
             "first_seen_at": a.first_seen_at.isoformat()} for a in items]
    print_rows(rows, fmt, ["first_seen_at", "section", "title", "url"])

