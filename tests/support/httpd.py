"""A real HTTP server on 127.0.0.1 for fetch and ingest tests.

``FeedServer`` serves routes from a thread: feeds with ETag and Last-Modified (answering 304
to a matching conditional request), error statuses, redirects, HTML pages, gzip-encoded
bodies, a response that hangs until the server stops, a body trickled out slowly, a route
that fails its first requests (for retries) and bodies sent without a length. Every request
is recorded so a test can assert what was asked.
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from digest.feeds import FetchPolicy
from tests.support.smtpd import free_port

# A fetch that gives up at the first failure: the tests of one answer need no retries.
NO_RETRY = FetchPolicy(retries=0)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 drops bursts of concurrent fetches (1 s SYN retry)


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    location: str | None = None  # for redirects
    hang: bool = False  # send nothing until the server stops
    gzip: bool = False  # send the body gzip-encoded (Content-Encoding: gzip)
    fail_first: int = 0  # answer this many requests with fail_status before serving
    fail_status: int = 503
    retry_after: str | None = None  # sent with the failures
    trickle: float = 0.0  # seconds between 64-byte pieces of the body
    send_length: bool = True  # False: no Content-Length, the body ends when the connection does


@dataclass
class Seen:
    path: str
    headers: dict[str, str] = field(default_factory=dict)


class FeedServer:
    """Use as a context manager; ``url(path)`` gives the address of a route."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self._failed: dict[str, int] = {}
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def url(self, path: str) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def add(self, path: str, route: Route | None = None, **fields) -> str:
        self.routes[path] = route or Route(**fields)
        return self.url(path)

    def requests_to(self, path: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _take_failure(self, path: str, route: Route) -> bool:
        """Whether this request to ``path`` is one of the route's failing first ones."""
        with self._lock:
            served = self._failed.get(path, 0)
            if served >= route.fail_first:
                return False
            self._failed[path] = served + 1
            return True

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._record(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = server.routes.get(self.path)
                if route is None:
                    return self._send(404, b"no such page", "text/plain")
                if route.hang:
                    server._release.wait()
                    return None
                if route.fail_first and server._take_failure(self.path, route):
                    self.send_response(route.fail_status)
                    if route.retry_after:
                        self.send_header("Retry-After", route.retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if route.location:
                    self.send_response(route.status)
                    self.send_header("Location", route.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if self._not_modified(route):
                    self.send_response(304)
                    self._validators(route)
                    self.end_headers()
                    return None
                return self._send(route.status, route.body, route.content_type, route)

            def _not_modified(self, route: Route) -> bool:
                if route.status != 200:
                    return False
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    return True
                return bool(
                    route.last_modified
                    and not self.headers.get("If-None-Match")
                    and self.headers.get("If-Modified-Since") == route.last_modified
                )

            def _validators(self, route: Route) -> None:
                if route.etag:
                    self.send_header("ETag", route.etag)
                if route.last_modified:
                    self.send_header("Last-Modified", route.last_modified)

            def _send(
                self, status: int, body: bytes, content_type: str, route: Route | None = None
            ) -> None:
                route = route or Route()
                if route.gzip:
                    body = gzip.compress(body)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                if route.gzip:
                    self.send_header("Content-Encoding", "gzip")
                if route.send_length:
                    self.send_header("Content-Length", str(len(body)))
                self._validators(route)
                self.end_headers()
                try:
                    if not route.trickle:
                        self.wfile.write(body)
                        return
                    for start in range(0, len(body), 64):
                        if server._release.wait(route.trickle):  # the server is stopping
                            return
                        self.wfile.write(body[start : start + 64])
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on the body, as it should

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        return Handler


def closed_port_url() -> str:
    """A feed URL on a loopback port nobody listens on: every fetch of it is refused."""
    return f"http://127.0.0.1:{free_port()}/feed.xml"
