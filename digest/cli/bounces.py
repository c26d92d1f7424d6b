"""`digest bounces process PATH`: act on returned mail, complaints and mailed unsubscribes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from digest import pipeline
from digest.cli._app import JsonOpt, app, context, counted, emit_json, out

bounces_app = typer.Typer(help="Bounces and complaints: process a mailbox.", no_args_is_help=True)
app.add_typer(bounces_app, name="bounces")


@bounces_app.command("process")
def bounces_process(
    path: Annotated[
        Path, typer.Argument(help="A Maildir, an mbox file, an .eml file or a folder of them.")
    ],
    as_json: JsonOpt = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what each message would do; change nothing.")
    ] = False,
) -> None:
    """Hard bounces and complaints suppress the address, soft bounces are counted (with
    decay), mail to the List-Unsubscribe address unsubscribes; only reports tied to a message
    digest sent act. Safe to run again."""
    with context() as ctx:
        summary = pipeline.process_bounces(ctx, path, pipeline.utcnow(), dry_run=dry_run)
    if as_json:
        emit_json(summary.as_dict())
        return
    for detail in summary.details:
        if detail.get("error"):
            out.print(f"{detail['source']}: {detail['error']}", markup=False)
            continue
        flags = f" [{', '.join(detail['flags'])}]" if detail["flags"] else ""
        for r in detail["recipients"]:
            out.print(
                f"{detail['source']}: {r['address'] or '(no address)'} {r['reason']}"
                f" -> {r['action']} ({r['why']}){flags}",
                markup=False,
            )
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(summary.reports.items())) or "nothing"
    would = "would be " if dry_run else ""
    out.print(f"{counted(summary.messages, 'message')}: {kinds}", markup=False)
    out.print(
        f"{would}suppressed {summary.suppressed}, {would}unsubscribed {summary.unsubscribed}, "
        f"soft bounces {would}counted {summary.soft_counted}, unmatched {summary.unmatched}, "
        f"seen before {summary.already_seen}, unreadable {summary.unreadable}"
        + (" (dry run: nothing changed)" if dry_run else ""),
        markup=False,
    )
