"""Commands that manage subscribers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from digest import pipeline
from digest import subscribers as subs
from digest.cli._app import (Format, JsonOpt, ListOpt, context, emit_json, err, out,
                             print_rows, subscribers_app)
from digest.errors import ImportError_
from digest.models import SubscriberStatus

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
    with context() as ctx:
        sub = pipeline.add_subscriber(ctx, {"email": email, "name": name,
                                            "lists": ";".join(lists or []),
                                            "sections": sections}, pipeline.utcnow(), force=force)
    out.print(f"added {sub.email} to {', '.join(sub.lists)}", markup=False)


@subscribers_app.command("remove")
def subscribers_remove(email: str, erase: Annotated[bool, typer.Option(
        help="Delete all their data and keep only a hashed suppression entry.")] = False) -> None:
    """Delete a subscriber (see also `unsubscribe`, which keeps the record)."""
    with context() as ctx:
        ctx.store.remove_subscriber(subs.normalize_email(email), pipeline.utcnow(), erase=erase)
    out.print(f"removed {email}" + (" and suppressed its hash" if erase else ""), markup=False)


def _set_status(email: str, status: SubscriberStatus) -> None:
    with context() as ctx:
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
    with context() as ctx:
        rows = [subs.as_dict(s) for s in ctx.store.subscribers(lst, status)]
    print_rows(rows, fmt, ["email", "name", "status", "lists", "sections"])


@subscribers_app.command("show")
def subscribers_show(email: str, as_json: JsonOpt = False) -> None:
    """Show one subscriber: status and, per list, the sections they get."""
    with context() as ctx:
        sub = ctx.store.subscriber(subs.normalize_email(email))
        if sub is None:
            typer.echo(f"error: no subscriber {email}", err=True)
            raise typer.Exit(6)
        prefs = ctx.store.subscriptions(sub.email)
    data = subs.as_dict(sub) | {"subscriptions": {k: (None if v is None else sorted(v))
                                                  for k, v in prefs.items()}}
    if as_json:
        emit_json(data)
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
    with context() as ctx:
        result = pipeline.import_subscribers(ctx, path, pipeline.utcnow(), dry_run=dry_run,
                                             existing="skip" if skip_existing else "update",
                                             force=force)
    for reject in result.rejected:
        err.print(f"{path}:{reject.line}: {reject.reason}", markup=False)
    if as_json:
        emit_json({"path": result.path, "rows": result.rows, "added": result.added,
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
    with context() as ctx:
        items = ctx.store.subscribers(lst)
    if output is None:
        subs.write_csv(items, sys.stdout)
        return
    with open(output, "w", encoding="utf-8", newline="") as fh:
        count = subs.write_csv(items, fh)
    err.print(f"exported {count} subscribers to {output}", markup=False)

