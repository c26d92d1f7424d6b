"""`digest bounces process PATH`: act on returned mail, complaints and mailed unsubscribes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from digest import pipeline
from digest.cli._app import JsonOpt, app, context, emit_json, out

bounces_app = typer.Typer(help="Bounces and complaints: process a mailbox.", no_args_is_help=True)
app.add_typer(bounces_app, name="bounces")


@bounces_app.command("process")
def bounces_process(
    path: Annotated[
        Path, typer.Argument(help="A Maildir, an mbox file, an .eml file or a folder of them.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Hard bounces and complaints suppress the address, soft bounces are counted (with
    decay), mail to the List-Unsubscribe address unsubscribes. Safe to run again."""
    with context() as ctx:
        summary = pipeline.process_bounces(ctx, path, pipeline.utcnow())
    if as_json:
        emit_json(summary.as_dict())
        return
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(summary.reports.items())) or "nothing"
    out.print(f"{summary.messages} messages: {kinds}", markup=False)
    out.print(
        f"suppressed {summary.suppressed}, unsubscribed {summary.unsubscribed}, "
        f"soft bounces counted {summary.soft_counted}, unmatched {summary.unmatched}, "
        f"seen before {summary.already_seen}",
        markup=False,
    )
