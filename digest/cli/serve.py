"""`digest serve`: the public edge (unsubscribe, preferences, sign-up, view in browser)."""

from __future__ import annotations

from typing import Annotated

import typer

from digest import pipeline
from digest.cli._app import app, err, errors

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to bind; keep loopback behind a reverse proxy.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Serve the web pages on uvicorn; public links are built from DIGEST_BASE_URL."""
    import uvicorn

    from digest.web import create_app
    from digest.web.server import server_config

    with errors():
        ctx = pipeline.Context.open()
        web = create_app(ctx.settings, ctx.newsletter, ctx.store)
    if host not in LOOPBACK:
        err.print(
            f"warning: listening on {host}, not loopback: put a TLS reverse proxy in front",
            markup=False,
        )
    err.print(f"serving {ctx.settings.base_url} on http://{host}:{port}", markup=False)
    try:
        uvicorn.Server(server_config(web, ctx.settings, host=host, port=port)).run()
    finally:
        ctx.close()
