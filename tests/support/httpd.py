"""A real HTTP server on 127.0.0.1 for fetch and ingest tests.

``FeedServer`` serves routes from a thread: feeds with ETag and Last-Modified (answering 304
to a matching conditional request), error statuses, redirects, HTML pages and a response that
hangs until the server stops. Every request is recorded so a test can assert what was asked.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    location: str | None = None  # for redirects
    hang: bool = False  # send nothing until the server stops


@dataclass
class Seen:
    path: str
    headers: dict[str, str] = field(default_factory=dict)


class FeedServer:
    """Use as a context manager; ``url(path)`` gives the address of a route."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "FeedServer":
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

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server._record(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = server.routes.get(self.path)
                if route is None:
                    return self._send(404, b"no such page", "text/plain")
                if route.hang:
                    server._release.wait()
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
                return bool(route.last_modified and not self.headers.get("If-None-Match")
                            and self.headers.get("If-Modified-Since") == route.last_modified)

            def _validators(self, route: Route) -> None:
                if route.etag:
                    self.send_header("ETag", route.etag)
                if route.last_modified:
                    self.send_header("Last-Modified", route.last_modified)

            def _send(self, status: int, body: bytes, content_type: str,
                      route: Route | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if route is not None:
                    self._validators(route)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        return Handler
