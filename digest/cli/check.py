"""The editor's lint: is today's message safe to send? (``digest send`` runs it too.)"""

from __future__ import annotations

from typing import Annotated

import typer

from digest import pipeline
from digest.cli._app import JsonOpt, ListOpt, app, context, emit_json, out
from digest.exits import ExitCode, command_help


@app.command(
    help=command_help(
        """Lint today's composed message: structure, accessibility, contrast, headers, size.

    Each finding says what and where; warnings do not change the exit code.""",
        ExitCode.OK,
        ExitCode.CHECK,
    )
)
def check(
    lst: ListOpt = None,
    as_json: JsonOpt = False,
    subscriber: Annotated[
        str | None,
        typer.Option(help="Whose message (default: a sample reader with every section)."),
    ] = None,
) -> None:
    with context() as ctx:
        report = pipeline.check(ctx, lst, now=pipeline.utcnow(), subscriber_email=subscriber)
    if as_json:
        emit_json(report.as_dict())
    else:
        for note in report.notes:
            out.print(f"trimmed: {note}", markup=False)
        for finding in report.findings:
            out.print(str(finding), markup=False)
        warnings = len(report.findings) - len(report.errors)
        out.print(
            f"edition {report.edition} for {report.recipient}: {len(report.errors)} "
            f"error(s), {warnings} warning(s)",
            markup=False,
        )
    raise typer.Exit(report.exit_code)
