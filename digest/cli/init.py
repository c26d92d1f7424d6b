"""`digest init`: set up a folder (starter newsletter definition, store, secret key)."""

from __future__ import annotations

from digest import pipeline
from digest.cli._app import app, errors, out


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
