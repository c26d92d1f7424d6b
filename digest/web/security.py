"""What every response and request of a web app goes through: security headers, the
same-origin rule for form posts, the cap on request bodies, and (for the preview studio)
the Host names it answers.

No page needs a script, so none may run; styles are inline (the pages' own and those of an
edition's HTML). Nothing may frame a page, no referrer leaks a token to the sites an edition
links to, and no page holding a token is cached anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "interest-cohort=(), browsing-topics=()",
    "cache-control": "no-store",
}
MAX_BODY = 64 * 1024  # a form of ours is a few hundred bytes
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})

Refusal = Callable[[], Response]


class SecurityHeaders:
    """ASGI middleware: sets ``headers`` (HEADERS by default) on every response, and drops
    uvicorn's Server banner. A response that sets one of ``own`` itself keeps its value
    (the public archive's pages, which hold no token, set their own Cache-Control)."""

    def __init__(
        self, app: ASGIApp, headers: Mapping[str, str] = HEADERS, own: frozenset[str] = frozenset()
    ) -> None:
        self.app, self.headers, self.own = app, dict(headers), own

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                given = message.get("headers", [])
                kept = {k.decode("latin-1").lower() for k, _ in given} & self.own
                headers = [
                    (k, v)
                    for k, v in given
                    if k.decode("latin-1").lower() in kept
                    or k.decode("latin-1").lower() not in self.headers
                ]
                headers += [
                    (k.encode(), v.encode()) for k, v in self.headers.items() if k not in kept
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, lower-cased, default ports dropped; None if none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def same_origin(headers: Headers, origin: str) -> bool:
    """Whether a POST comes from a page of ``origin``, by the best evidence the browser sent:
    Origin, else Sec-Fetch-Site, else Referer. A request with none of them is no browser's
    form post (a mail system's RFC 8058 one-click unsubscribe sends none) and passes."""
    if "origin" in headers:
        if headers["origin"].strip().lower() == "null":
            # Sent by sandboxes and redirects, and by browsers for a page's own forms when the
            # page's Referrer-Policy is no-referrer (ours is): then only the browser's
            # Sec-Fetch-Site saying the form was this site's own lets it pass.
            return headers.get("sec-fetch-site", "").strip().lower() == "same-origin"
        return origin_of(headers["origin"]) == origin
    if "sec-fetch-site" in headers:
        return headers["sec-fetch-site"].strip().lower() in ("same-origin", "none")
    if "referer" in headers:
        return origin_of(headers["referer"]) == origin
    return True


class SameOriginPosts:
    """ASGI middleware: a POST from a page of another origin is refused before any handler
    sees it (a cross-site form can neither sign someone up nor act with a link's token)."""

    def __init__(self, app: ASGIApp, origin: str, refuse: Refusal) -> None:
        self.app, self.origin, self.refuse = app, origin, refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and not same_origin(Headers(scope=scope), self.origin)
        ):
            await self.refuse()(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered by ``refuse`` (413)
    as soon as it is announced (Content-Length) or, streamed, as soon as it grows past the
    limit; nothing beyond the limit is read or kept. The body is read before the handler
    runs and handed to it whole."""

    def __init__(self, app: ASGIApp, refuse: Refusal, limit: int = MAX_BODY) -> None:
        self.app, self.refuse, self.limit = app, refuse, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > self.limit):
            await self.refuse()(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: nobody to answer
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self.refuse()(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body, handed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal handed
            if not handed:
                handed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def host_name(value: str) -> str:
    """The name in a Host header, without its port (``[::1]:8025`` gives ``[::1]``)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else ""
    return value.rsplit(":", 1)[0] if ":" in value else value


def edge_hosts(base_url: str) -> frozenset[str]:
    """The Host names ``digest serve`` answers: DIGEST_BASE_URL's and the loopback names."""
    return LOOPBACK_NAMES | {host_name(urlsplit(base_url).netloc)}


class AllowedHosts:
    """ASGI middleware: answers only requests whose Host names one of ``names`` (any port).
    A page on another site that rebinds its own name to 127.0.0.1 sends its own name as
    Host, so it cannot read a local server through the victim's browser."""

    def __init__(self, app: ASGIApp, names: frozenset[str]) -> None:
        self.app, self.names = app, frozenset(n.lower() for n in names)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and host_name(Headers(scope=scope).get("host", "")) not in self.names
        ):
            await Response(
                "unknown Host: this server answers only " + ", ".join(sorted(self.names)) + "\n",
                status_code=421,
                media_type="text/plain",
            )(scope, receive, send)
            return
        await self.app(scope, receive, send)
