"""The command line: parses arguments, calls ``digest.pipeline``, prints the result.

No logic lives here. Errors are one line on stderr (``error: ...``) with the error's exit code;
``--verbose`` adds the traceback. ``asyncio.run`` is called here and nowhere else. Each
module registers its commands on the app of ``_app``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from digest import __version__, pipeline
from digest.cli._app import _state, app, errors, out


def _version(value: bool) -> None:
    if value:
        typer.echo(f"digest {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show details (tracebacks) on errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Settings come from DIGEST_* environment variables and .env; the newsletter's lists and
    sections from digest.toml (DIGEST_CONFIG)."""
    _state["verbose"] = verbose


@app.command()
def init() -> None:
    """Set up this folder: write a starter digest.toml when there is none, create or upgrade
    the store, and write a .env with a new secret key if there is none."""
    from digest.config import load_settings

    with errors():
        done = pipeline.init(load_settings())
    if done["config"]:
        out.print(
            f"wrote a starter newsletter definition to {done['config']}: edit the lines "
            "marked EDIT (its feed is an example), then run digest fetch"
        )
    out.print(f"store ready: {done['database']}")
    if done["env_file"]:
        out.print(f"wrote a new secret key to {done['env_file']}")


# Each module registers its commands on the app; add new ones here.
from digest.cli import (  # noqa: E402,F401
    archive,
    bounces,
    check,
    editions,
    ingest,
    lists,
    preview,
    sections,
    send,
    serve,
    subscribers,
)


def main() -> None:
    app()


__all__ = ["app", "main"]
