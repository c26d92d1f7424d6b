"""The editor's job: see today's edition as a subscriber will, before it goes out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from digest import pipeline
from digest.cli._app import ListOpt, app, context, out

@app.command()
def preview(lst: ListOpt = None,
            out_dir: Annotated[Path, typer.Option("--out", help="Folder for the files.")] =
            Path("preview"),
            subscriber: Annotated[Optional[str], typer.Option(
                help="Whose message (default: a sample reader with every section).")] = None
            ) -> None:
    """Write today's message for one recipient as HTML, plain text and .eml."""
    with context() as ctx:
        result = pipeline.preview(ctx, lst, out_dir, now=pipeline.utcnow(),
                                  subscriber_email=subscriber)
    out.print(f"edition {result.edition} for {result.recipient}:", markup=False)
    for path in (result.html, result.text, result.eml):
        out.print(f"  {path.resolve()}", markup=False)
