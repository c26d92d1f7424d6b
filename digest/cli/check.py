"""The editor's lint: is today's message safe to send? (``digest send`` runs it too.)"""

from __future__ import annotations

from typing import Annotated

import typer

from digest import pipeline
from digest.cli._app import (
    EveryListOpt,
    JsonOpt,
    app,
    context,
    each_list,
    emit_json,
    err,
    out,
)
from digest.exits import ExitCode, command_help, most_serious


@app.command(
    help=command_help(
        """Lint today's composed message: structure, accessibility, contrast, headers, size.

    Each finding says what and where; warnings do not change the exit code. Without --list,
    every list's message is checked (--json: one line per list); the exit code is the most
    serious of the lists'.""",
        ExitCode.OK,
        ExitCode.CHECK,
    )
)
def check(
    lst: EveryListOpt = None,
    as_json: JsonOpt = False,
    subscriber: Annotated[
        str | None,
        typer.Option(help="Whose message (default: a sample reader with every section)."),
    ] = None,
) -> None:
    codes: list[int] = []
    with context() as ctx:
        names = ctx.lists_covered(lst)
        checks = each_list(
            names,
            lambda name: pipeline.check(
                ctx, name, now=pipeline.utcnow(), subscriber_email=subscriber
            ),
            codes,
            as_json,
        )
        for name, report in checks:
            codes.append(report.exit_code)
            if as_json:
                emit_json(report.as_dict())
                continue
            for advice in report.advice:
                err.print(f"warning: {advice}", markup=False)
            if len(names) > 1:
                out.print(f"list {name}:", markup=False)
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
    raise typer.Exit(most_serious(codes))
