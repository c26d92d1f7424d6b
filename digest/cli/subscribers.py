"""Commands that manage subscribers: add, remove, (un|re)subscribe, list, show, import,
export, prefs. Each parses its arguments, calls one ``digest.pipeline`` function, prints."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from digest import pipeline
from digest.cli._app import (
    Format,
    JsonOpt,
    ListOpt,
    context,
    counted,
    emit_json,
    err,
    out,
    print_rows,
    subscribers_app,
)
from digest.errors import RowsRejected
from digest.files import open_private
from digest.states import SubscriberStatus

FormatOpt = Annotated[
    Format, typer.Option("--format", "-f", help="table (a terminal), csv or json (lines).")
]
COLUMNS = ["email", "name", "status", "lists", "sections", "frequency"]


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
    """Add a subscriber (active, with the consent source given); activates a pending
    sign-up."""
    with context() as ctx:
        result = pipeline.add_subscriber(
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
    sub = result.subscriber
    verb = "activated" if result.activated else "added"
    out.print(f"{verb} {sub.email} on {', '.join(sub.lists)}", markup=False)
    for note in result.notes:
        err.print(f"note: {note}", markup=False)


@subscribers_app.command("remove")
def subscribers_remove(
    email: str,
    erase: Annotated[
        bool, typer.Option(help="Delete all their data and keep only a hashed suppression entry.")
    ] = False,
) -> None:
    """Delete a subscriber (see also `unsubscribe`, which keeps the record)."""
    with context() as ctx:
        email = pipeline.remove_subscriber(ctx, email, pipeline.utcnow(), erase=erase)
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
    """List subscribers, with their lists, sections and status (csv: the export format)."""
    from digest.audience import files as subs
    from digest.audience.addresses import printable

    with context() as ctx:
        if fmt is Format.csv:
            pipeline.export_subscribers(ctx, sys.stdout, list_name=lst, status=status)
            return
        records = pipeline.list_subscribers(ctx, lst, status)
    rows = [subs.as_dict(r) for r in records]
    if fmt is Format.table:
        rows = [r | {"name": printable(r["name"])} for r in rows]
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
    from digest.audience import files as subs
    from digest.audience.addresses import printable

    with context() as ctx:
        data = pipeline.show_subscriber(ctx, email)
        if fmt is Format.csv:
            subs.write_csv([pipeline.subscriber_record(ctx, email)], sys.stdout)
            return
    if as_json or fmt is Format.json:
        emit_json(data)
        return
    out.print(f"{data['email']}  {printable(data['name'])}  [{data['status']}]", markup=False)
    out.print(
        f"  consent: {printable(data['consent']) or '-'} at {data['consent_at'] or '-'}"
        + (f" from {data['consent_ip']}" if data["consent_ip"] else ""),
        markup=False,
    )
    if data["timezone"]:
        out.print(f"  timezone: {data['timezone']}", markup=False)
    if data["suppressed"]:
        out.print(f"  suppressed: {data['suppressed']}", markup=False)
    for name, sections in data["subscriptions"].items():
        state = data["memberships"][name]
        label = state["state"] + (", paused" if state["paused"] else "")
        if name in data["frequencies"]:
            label += f", {data['frequencies'][name]}"
        out.print(
            f"  {name} ({label}): {', '.join(sections) if sections else 'all sections'}",
            markup=False,
        )


@subscribers_app.command("prefs")
def subscribers_prefs(
    email: str,
    lst: ListOpt = None,
    sections: Annotated[
        str | None, typer.Option(help="Section slugs, comma-separated, or 'all'.")
    ] = None,
    pause: Annotated[
        bool | None,
        typer.Option("--pause/--resume", help="Pause the subscription, or resume it."),
    ] = None,
    join: Annotated[
        bool, typer.Option(help="Subscribe them to the list if they are not on it.")
    ] = False,
    frequency: Annotated[
        str | None,
        typer.Option(
            help="How often they get the list: daily, weekly or monthly, one the list "
            "offers (digest.toml frequencies), or 'default' for the list's own schedule.",
            show_default=False,
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            "--timezone",
            metavar="ZONE",
            show_default=False,
            help="The person's own IANA time zone, e.g. Europe/Oslo ('' clears it): lists "
            "with deliver_local send at their send_at on its clock.",
        ),
    ] = None,
) -> None:
    """Change the sections someone gets on a list, how often, or pause it; set their time
    zone. Never subscribes anyone again: someone who left stays unsubscribed (see
    `resubscribe`)."""
    with context() as ctx:
        if timezone is not None:
            record = pipeline.set_timezone(ctx, email, timezone, pipeline.utcnow())
            out.print(
                f"{record.email} timezone: {record.timezone or 'none (each list its own)'}",
                markup=False,
            )
            if sections is None and pause is None and not join and frequency is None:
                return
        record = pipeline.set_preferences(
            ctx,
            email,
            lst,
            pipeline.utcnow(),
            sections=sections,
            paused=pause,
            join=join,
            frequency=frequency,
        )
    for m in record.memberships:
        state = "" if m.state == "active" else f" ({m.state})"
        if record.status.value != "active":
            state = f" ({record.status.value})"
        paused = " (paused)" if m.paused else ""
        chosen = ", ".join(sorted(m.sections)) if m.sections else "all sections"
        often = f", {m.frequency}" if m.frequency else ""
        out.print(f"{record.email} {m.list}{state}{paused}: {chosen}{often}", markup=False)


@subscribers_app.command("import")
def subscribers_import(
    path: Annotated[Path, typer.Argument(help="A CSV (header row) or .jsonl file.")],
    dry_run: Annotated[bool, typer.Option(help="Check the file; store nothing.")] = False,
    update: Annotated[
        bool,
        typer.Option(
            "--update",
            help="Also update the names, sections and lists of subscribers "
            "already stored (never their consent).",
        ),
    ] = False,
    skip_existing: Annotated[
        bool,
        typer.Option(
            help="Leave subscribers already stored as they are (the default).", hidden=True
        ),
    ] = False,
    force: Annotated[bool, typer.Option(help="Import suppressed addresses too.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import subscribers. Columns: email (required), name, lists, sections, status, consent,
    consent_at, consent_ip, timezone (Mailchimp's and listmonk's exports too). New addresses
    are added; subscribers already stored are left as they are unless --update; nobody who
    left is subscribed again. Bad rows are reported with their line number; the good rows are stored
    in one transaction; the exit code is 5 if any row was rejected."""
    if update and skip_existing:
        raise typer.BadParameter("--update and --skip-existing contradict each other")
    with context() as ctx:
        result = pipeline.import_subscribers(
            ctx, path, pipeline.utcnow(), dry_run=dry_run, update=update, force=force
        )
    for reject in result.rejected:
        err.print(f"{path}:{reject.line}: {reject.reason}", markup=False)
    for note in result.notes:
        err.print(f"{path}:{note.line}: note: {note.reason}", markup=False)
    if as_json:
        emit_json(
            {
                "path": result.path,
                "rows": result.rows,
                "added": result.added,
                "updated": result.updated,
                "unchanged": result.skipped,
                "changed": result.changes,
                "rejected": [{"line": r.line, "reason": r.reason} for r in result.rejected],
                "notes": [{"line": n.line, "note": n.reason} for n in result.notes],
                "dry_run": dry_run,
            }
        )
    else:
        verb = "would import" if dry_run else "imported"
        for change in result.changes:
            out.print(
                f"{'would change' if dry_run else 'changed'} {change['email']} (line "
                f"{change['line']}): {'; '.join(change['changes'])}",
                markup=False,
            )
        out.print(
            f"{verb} {path}: {result.added} added, {result.updated} updated, "
            f"{result.skipped} unchanged, {len(result.rejected)} rejected",
            markup=False,
        )
    if result.rejected:
        raise typer.Exit(RowsRejected.exit_code)


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
        if output is None:
            pipeline.export_subscribers(
                ctx, sys.stdout, json_lines=fmt is Format.json, list_name=lst, status=status
            )
            return
        with open_private(output, "w", encoding="utf-8", newline="") as fh:
            count = pipeline.export_subscribers(
                ctx, fh, json_lines=fmt is Format.json, list_name=lst, status=status
            )
    err.print(f"exported {counted(count, 'subscriber')} to {output}", markup=False)
