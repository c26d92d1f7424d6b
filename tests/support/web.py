"""A real uvicorn server in a thread, for the web edge and the preview studio."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn


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
