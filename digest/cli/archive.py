"""`digest archive build`: the public archive as files for a static host."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from digest import pipeline
from digest.cli._app import EveryListOpt, JsonOpt, app, context, emit_json, out

archive_app = typer.Typer(
    help="The public archive of sent editions: build it as files.", no_args_is_help=True
)
app.add_typer(archive_app, name="archive")


@archive_app.command("build")
def archive_build(
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out", help="The folder served as DIGEST_BASE_URL; archive/ is written in it."
        ),
    ],
    list_name: EveryListOpt = None,
    rewrite: Annotated[
        bool,
        typer.Option(
            "--rewrite", help="Write every edition's page again (after a template change)."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write the archive's pages and Atom feeds, linked under DIGEST_BASE_URL. Incremental:
    an edition's page already written is kept; index pages and feeds are updated."""
    with context() as ctx:
        done = pipeline.build_archive(ctx, out_dir, list_name, rewrite=rewrite)
    if as_json:
        emit_json(vars(done))
        return
    out.print(
        f"editions: {done.editions_written} written, {done.editions_skipped} skipped "
        f"(already written); index pages and feeds: {done.pages_written} written, "
        f"{done.pages_unchanged} unchanged; in {out_dir / 'archive'}",
        markup=False,
    )
