"""The editor's job: see today's edition as a subscriber will, before it goes out."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from digest import pipeline
from digest.cli._app import EveryListOpt, app, context, each_list, err, errors, out
from digest.exits import most_serious


@app.command()
def preview(
    lst: EveryListOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the files.")] = Path("preview"),
    subscriber: Annotated[
        str | None,
        typer.Option(help="Whose message (default: a sample reader with every section)."),
    ] = None,
    open_: Annotated[
        bool, typer.Option("--open", help="Open the written HTML in the system's browser.")
    ] = False,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Run the preview studio: every width, light and dark, the "
            "plain text, headers and check findings; reloads on edits.",
        ),
    ] = False,
    host: Annotated[
        str,
        typer.Option(
            help="The studio's address; off loopback, it also answers that Host name "
            "(any Host for 0.0.0.0 or ::)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The studio's port.")] = 8025,
    next_: Annotated[
        bool,
        typer.Option(
            "--next",
            help="The next edition to go out (tomorrow's once today's was sent), as it "
            "stands now; nothing is created.",
        ),
    ] = False,
    on: Annotated[
        str | None,
        typer.Option(
            "--date",
            metavar="YYYY-MM-DD",
            help="The edition of that date: as sent, or for today and later the draft as it "
            "stands now.",
        ),
    ] = None,
    frequency: Annotated[
        str | None,
        typer.Option(
            help="The edition of the readers who chose this frequency (daily, weekly, "
            "monthly: one the list offers), e.g. the week's edition of a daily list.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write today's message for one recipient as HTML, plain text and .eml, or serve the
    preview studio (--serve).

    Without --list: every list; with several, each list's files go to a subfolder of --out
    named after the list (the studio picks a list on its page)."""
    if serve:
        from digest import studio

        with errors():
            url = f"http://{host}:{port}/"
            if studio.off_loopback(host):
                err.print(
                    f"warning: the studio listens on {host}, not loopback: anyone who "
                    "can reach it sees your editions",
                    markup=False,
                )
            err.print(f"preview studio on {url} (Ctrl-C to stop)", markup=False)
            if open_:
                webbrowser.open(url)
            studio.serve(host=host, port=port, list_name=lst)
        return
    codes: list[int] = []
    with context() as ctx:
        names = ctx.lists_covered(lst)

        def folder(name: str | None) -> Path:
            # Several lists: each list's files in a subfolder of --out named after it.
            return out_dir if len(names) == 1 else out_dir / str(name)

        previews = each_list(
            names,
            lambda name: pipeline.preview(
                ctx,
                name,
                folder(name),
                now=pipeline.utcnow(),
                subscriber_email=subscriber,
                next_edition=next_,
                on=on,
                frequency=frequency,
            ),
            codes,
            False,
        )
        for name, result in previews:
            shown = "" if len(names) == 1 else f"list {name}, "
            out.print(f"{shown}edition {result.edition} for {result.recipient}:", markup=False)
            for path in (result.html, result.text, result.eml):
                out.print(f"  {path.resolve()}", markup=False)
            for note in result.notes:
                out.print(f"trimmed: {note}", markup=False)
            if open_:
                webbrowser.open(result.html.resolve().as_uri())
    raise typer.Exit(most_serious(codes))
