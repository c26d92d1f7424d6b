"""Commands that manage subscribers: add, remove, (un|re)subscribe, list, show, import,
export, prefs. Each parses its arguments, calls ``digest.pipeline`` or the store, prints."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from digest import pipeline
from digest import subscribers as subs
from digest.cli._app import (
    Format,
    JsonOpt,
    ListOpt,
    context,
    emit_json,
    err,
    out,
    print_rows,
    subscribers_app,
)
from digest.errors import ImportError_, SubscriberError
from digest.files import open_private
from digest.models import SubscriberStatus

FormatOpt = Annotated[
    Format, typer.Option("--format", "-f", help="table (a terminal), csv or json (lines).")
]
COLUMNS = ["email", "name", "status", "lists", "sections"]


@subscribers_app.command("add")
def subscribers_add(
    email: str,
    name: Annotated[str, typer.Option(help="The subscriber's name.")] = "",
    lists: Annotated[
        list[str] | None, typer.Option("--list", "-l", help="A list (repeatable).")
    ] = None,
    sections: Annotated[
        str, typer.Option(help="Section slugs, comma- or semicolon-separated (default: all).")
    ] = "",
    consent: Annotated[
        str, typer.Option(help="Where the consent came from, e.g. 'paper form 2026-03'.")
    ] = "cli",
    force: Annotated[bool, typer.Option(help="Add even a suppressed address.")] = False,
) -> None:
    """Add a subscriber (active, with the consent source given)."""
    with context() as ctx:
        sub = pipeline.add_subscriber(
            ctx,
            {
                "email": email,
                "name": name,
                "lists": ";".join(lists or []),
                "sections": sections,
                "consent": consent,
            },
            pipeline.utcnow(),
            force=force,
        )
    out.print(f"added {sub.email} to {', '.join(sub.lists)}", markup=False)


@subscribers_app.command("remove")
def subscribers_remove(
    email: str,
    erase: Annotated[
        bool, typer.Option(help="Delete all their data and keep only a hashed suppression entry.")
    ] = False,
) -> None:
    """Delete a subscriber (see also `unsubscribe`, which keeps the record)."""
    with context() as ctx:
        ctx.store.remove_subscriber(subs.normalize_email(email), pipeline.utcnow(), erase=erase)
    out.print(f"removed {email}" + (" and suppressed its hash" if erase else ""), markup=False)


@subscribers_app.command("unsubscribe")
def subscribers_unsubscribe(
    email: str,
    lst: Annotated[
        str | None, typer.Option("--list", "-l", help="Only this list (default: every list).")
    ] = None,
) -> None:
    """Unsubscribe someone: they get nothing more, even from a running send."""
    with context() as ctx:
        sub = pipeline.unsubscribe(ctx, email, lst, pipeline.utcnow())
    out.print(f"{sub.email}: {sub.status.value}" + (f" (left {lst})" if lst else ""), markup=False)


@subscribers_app.command("resubscribe")
def subscribers_resubscribe(
    email: str,
    lst: Annotated[
        str | None,
        typer.Option("--list", "-l", help="Only this list (default: every list they left)."),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Also lift a suppression (bounce, complaint, erasure).")
    ] = False,
) -> None:
    """Make an unsubscribed subscriber active again (only with their consent)."""
    with context() as ctx:
        sub = pipeline.resubscribe(ctx, email, lst, pipeline.utcnow(), force=force)
    out.print(f"{sub.email}: {sub.status.value}", markup=False)


@subscribers_app.command("list")
def subscribers_list(
    lst: ListOpt = None,
    status: Annotated[SubscriberStatus | None, typer.Option()] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """List subscribers, with their lists, sections and status."""
    with context() as ctx:
        rows = [subs.as_dict(r) for r in ctx.store.records(lst, status)]
    print_rows(rows, fmt, COLUMNS)


@subscribers_app.command("show")
def subscribers_show(
    email: str,
    as_json: JsonOpt = False,
    fmt: Annotated[
        Format | None, typer.Option("--format", "-f", help="table, csv or json.")
    ] = None,
) -> None:
    """Show one subscriber: status, consent and, per list, state and sections."""
    with context() as ctx:
        record = ctx.store.record(subs.normalize_email(email))
        if record is None:
            raise_missing(email)
        data = subs.detail(record, ctx.store.suppression(record.email))
    if as_json or fmt is Format.json:
        emit_json(data)
        return
    if fmt is Format.csv:
        print_rows([subs.export_row(record)], Format.csv, list(subs.COLUMNS))
        return
    out.print(f"{data['email']}  {data['name']}  [{data['status']}]", markup=False)
    out.print(
        f"  consent: {data['consent'] or '-'} at {data['consent_at'] or '-'}"
        + (f" from {data['consent_ip']}" if data["consent_ip"] else ""),
        markup=False,
    )
    if data["suppressed"]:
        out.print(f"  suppressed: {data['suppressed']}", markup=False)
    for name, sections in data["subscriptions"].items():
        state = data["memberships"][name]
        label = state["state"] + (", paused" if state["paused"] else "")
        out.print(
            f"  {name} ({label}): {', '.join(sections) if sections else 'all sections'}",
            markup=False,
        )


def raise_missing(email: str) -> NoReturn:
    raise SubscriberError(f"no subscriber {email}")


@subscribers_app.command("prefs")
def subscribers_prefs(
    email: str,
    lst: ListOpt = None,
    sections: Annotated[
        str | None, typer.Option(help="Section slugs, comma-separated, or 'all'.")
    ] = None,
    pause: Annotated[
        bool | None, typer.Option("--pause/--resume", help="Pause the subscription, or resume it.")
    ] = None,
    join: Annotated[
        bool, typer.Option(help="Subscribe them to the list if they are not on it.")
    ] = False,
) -> None:
    """Change the sections someone gets on a list, or pause it."""
    with context() as ctx:
        pipeline.set_preferences(
            ctx, email, lst, pipeline.utcnow(), sections=sections, paused=pause, join=join
        )
        record = ctx.store.record(subs.normalize_email(email))
        if record is None:
            raise_missing(email)
        data = subs.detail(record, None)
    for name, chosen in data["subscriptions"].items():
        paused = " (paused)" if data["memberships"][name]["paused"] else ""
        out.print(
            f"{data['email']} {name}{paused}: {', '.join(chosen) if chosen else 'all sections'}",
            markup=False,
        )


@subscribers_app.command("import")
def subscribers_import(
    path: Annotated[Path, typer.Argument(help="A CSV (header row) or .jsonl file.")],
    dry_run: Annotated[bool, typer.Option(help="Check the file; store nothing.")] = False,
    skip_existing: Annotated[
        bool, typer.Option(help="Leave subscribers already stored as they are.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Import suppressed addresses too.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import subscribers. Columns: email (required), name, lists, sections, status, consent,
    consent_at, consent_ip. Bad rows are reported with their line number; the good rows are
    stored in one transaction; the exit code is 5 if any row was rejected."""
    with context() as ctx:
        result = pipeline.import_subscribers(
            ctx,
            path,
            pipeline.utcnow(),
            dry_run=dry_run,
            existing="skip" if skip_existing else "update",
            force=force,
        )
    for reject in result.rejected:
        err.print(f"{path}:{reject.line}: {reject.reason}", markup=False)
    if as_json:
        emit_json(
            {
                "path": result.path,
                "rows": result.rows,
                "added": result.added,
                "updated": result.updated,
                "unchanged": result.skipped,
                "rejected": [{"line": r.line, "reason": r.reason} for r in result.rejected],
                "dry_run": dry_run,
            }
        )
    else:
        verb = "would import" if dry_run else "imported"
        out.print(
            f"{verb} {path}: {result.added} added, {result.updated} updated, "
            f"{result.skipped} unchanged, {len(result.rejected)} rejected",
            markup=False,
        )
    if result.rejected:
        raise typer.Exit(ImportError_.exit_code)


@subscribers_app.command("export")
def subscribers_export(
    lst: ListOpt = None,
    status: Annotated[SubscriberStatus | None, typer.Option()] = None,
    fmt: Annotated[
        Format,
        typer.Option(
            "--format", "-f", help="csv (default) or json (JSON lines); both import back."
        ),
    ] = Format.csv,
    output: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Export subscribers in the import format (export then import loses nothing)."""
    with context() as ctx:
        records = ctx.store.records(lst, status)
    write = subs.write_jsonl if fmt is Format.json else subs.write_csv
    if output is None:
        write(records, sys.stdout)
        return
    with open_private(output, "w", encoding="utf-8", newline="") as fh:
        count = write(records, fh)
    err.print(f"exported {count} subscribers to {output}", markup=False)
