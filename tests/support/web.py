"""A real uvicorn server in a thread, for the web edge and the preview studio; ``serving``:
``digest serve``'s app on one, for a newsletter and a store."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from digest import pipeline
from digest.config import load_newsletter, load_settings
from digest.store import open_store
from digest.web import create_app
from digest.web.server import server_config
from tests.support.values import ROOT, SECRET


@contextmanager
def uvicorn_running(
    config: uvicorn.Config, sockets: list[socket.socket] | None = None
) -> Iterator[uvicorn.Server]:
    """Serve ``config`` (on ``sockets`` when given) until the block ends; the server is
    started when the block begins."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web server did not start")
        time.sleep(0.01)  # polling the server's own flag, with a deadline
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(10)


def base_url(server: uvicorn.Server) -> str:
    """The http:// address a started server listens on."""
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    return f"http://{host}:{port}"


@dataclass
class Served:
    url: str
    ctx: pipeline.Context
    http: httpx.Client


@contextmanager
def serving(tmp_path: Path, db_url: str, config: Path = ROOT / "digest.toml") -> Iterator[Served]:
    """``digest serve``'s app on a real uvicorn, its base URL the server's own address."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = load_settings(
        config=config,
        database_url=db_url,
        secret_key=SECRET,
        base_url=url,
        outbox=tmp_path / "outbox",
    )
    newsletter = load_newsletter(settings.config)
    store = open_store(settings.database_url)
    try:
        app = create_app(settings, newsletter, store)
        ctx = pipeline.Context(settings, newsletter, store)
        config_ = server_config(app, settings, log_level="warning")
        with uvicorn_running(config_, [sock]), httpx.Client(base_url=url, timeout=30) as http:
            yield Served(url, ctx, http)
    finally:
        store.close()
        sock.close()
