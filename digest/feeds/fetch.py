"""Getting a feed's bytes: http(s) with a conditional GET, or a local path / ``file://`` URL.

``fetch`` is one request's worth of policy: connect and read timeouts plus a total budget for
a body trickling in, at most ``max_redirects`` redirects (followed here, http(s) only, whatever
the client), a size cap counted on the decoded bytes (so a small gzip bomb is stopped too),
gzip/deflate decoded by httpx, ``If-None-Match``/``If-Modified-Since`` from the validators the
caller kept, and retries with exponential backoff on 5xx, 429, time-outs and dropped
connections (a ``Retry-After`` is honoured up to a cap). A refused connection or an unknown
host is not retried: it will not heal within seconds. Every failure is one ``FeedError`` line
naming the feed.

The URL a fetch starts from is the operator's (digest.toml, or ``digest feeds check``) and may
name any address. Once a redirect leaves that URL's origin, and for a URL that came from feed
content (``trusted=False``), every hop goes through ``digest.feeds.guard``: it may only reach
public addresses, checked at connect time on the address connected to. ``max_entries`` is
applied by ``parse``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import httpx

from digest import __version__
from digest.errors import FeedError
from digest.feeds.guard import UNTRUSTED, FeedTransport, RefusedAddress

if TYPE_CHECKING:
    from digest.config import Settings

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_WAIT = 30.0


@dataclass(frozen=True)
class FetchPolicy:
    """How patiently and how much one feed is fetched (see ``Settings.fetch_*``)."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_bytes: int = 10_000_000
    max_redirects: int = 5
    retries: int = 2
    backoff: float = 1.0  # seconds before the first retry; doubled for each one after
    max_entries: int = 1000  # a feed's newest entries read (parse); the others are left out

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchPolicy:
        return cls(
            connect_timeout=settings.fetch_connect_timeout,
            read_timeout=settings.fetch_read_timeout,
            max_bytes=settings.fetch_max_bytes,
            max_redirects=settings.fetch_max_redirects,
            retries=settings.fetch_retries,
            backoff=settings.fetch_retry_backoff,
            max_entries=settings.fetch_max_entries,
        )

    @property
    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout)


@dataclass(frozen=True)
class FetchResult:
    source: str
    status: str  # "ok" or "not-modified"
    content: bytes | None  # None when not-modified
    etag: str | None
    last_modified: str | None
    url: str | None = None  # where the bytes came from after redirects (http only)
    content_type: str | None = None
    http_status: int | None = None
    redirects: int = 0
    attempts: int = 1
    notes: tuple[str, ...] = field(default=())  # retries that happened, for the curious


def user_agent(contact: str | None = None) -> str:
    """An honest User-Agent: what fetches, and where its operator can be found."""
    return f"digest/{__version__} (+{contact})" if contact else f"digest/{__version__}"


class FeedClient(httpx.Client):
    """The client ``fetch`` takes: its transport guards the URLs that servers hand out
    (``digest.feeds.guard``). Made by ``new_client``."""


def new_client(
    *,
    policy: FetchPolicy | None = None,
    contact: str | None = None,
    connections: int = 10,
    timeout: float | None = None,
    transport: FeedTransport | None = None,
) -> FeedClient:
    """The HTTP client ingest shares across feeds and threads (redirects are followed by
    ``fetch``). ``timeout`` is the older single-number form of ``policy``."""
    policy = policy or (
        FetchPolicy(connect_timeout=timeout, read_timeout=timeout) if timeout else FetchPolicy()
    )
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return FeedClient(
        timeout=policy.timeout,
        follow_redirects=False,
        transport=transport or FeedTransport(limits=limits),
        headers={"User-Agent": user_agent(contact)},
    )


def fetch(
    source: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    client: FeedClient | None = None,
    policy: FetchPolicy | None = None,
    timeout: float | None = None,
    max_bytes: int | None = None,
    trusted: bool = True,
) -> FetchResult:
    """A feed's bytes, or "not-modified" when the server says they did not change.

    ``trusted``: ``source`` is the operator's (False for a URL taken from feed content: then
    it, too, may only reach public addresses). ``timeout`` and ``max_bytes`` override the
    policy's (a shorthand for tests and callers that need nothing else)."""
    if client is not None and not isinstance(client, FeedClient):
        raise TypeError("fetch needs a client made by new_client (it guards redirects)")
    policy = policy or FetchPolicy()
    if timeout is not None:
        policy = FetchPolicy(
            **{**policy.__dict__, "connect_timeout": timeout, "read_timeout": timeout}
        )
    if max_bytes is not None:
        policy = FetchPolicy(**{**policy.__dict__, "max_bytes": max_bytes})
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        if client is not None:
            return _fetch_http(client, source, etag, last_modified, policy, trusted)
        with new_client(policy=policy) as own:
            return _fetch_http(own, source, etag, last_modified, policy, trusted)
    if scheme == "file" or not re.match(r"^[a-z][a-z0-9+.-]*://", source, re.I):
        return _fetch_file(source, policy.max_bytes)
    raise FeedError(
        f"{source}: unsupported URL scheme {scheme}://", "use http://, https:// or a file path"
    )


def _fetch_file(source: str, max_bytes: int) -> FetchResult:
    if source.lower().startswith("file:"):
        path = Path(url2pathname(urlsplit(source).path))
    else:
        path = Path(source).expanduser()
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise FeedError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise FeedError(f"{source}: is a folder, not a feed file") from None
    except PermissionError:
        raise FeedError(f"{source}: permission denied") from None
    except OSError as exc:
        raise FeedError(f"{source}: cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise _too_large(source, max_bytes)
    return FetchResult(source, "ok", data, None, None)


class _Retry(Exception):
    """A failure worth another attempt: its one-line reason, and a server-asked wait."""

    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.reason, self.wait = reason, wait


def _fetch_http(
    client: httpx.Client,
    source: str,
    etag: str | None,
    last_modified: str | None,
    policy: FetchPolicy,
    trusted: bool,
) -> FetchResult:
    notes: list[str] = []
    for attempt in range(1, policy.retries + 2):
        try:
            result = _attempt(client, source, etag, last_modified, policy, trusted)
        except _Retry as retry:
            if attempt > policy.retries:
                raise FeedError(
                    f"{source}: {retry.reason}" + (f" ({attempt} attempts)" if attempt > 1 else "")
                ) from None
            wait = min(
                retry.wait if retry.wait is not None else policy.backoff * 2 ** (attempt - 1),
                MAX_RETRY_WAIT,
            )
            notes.append(f"attempt {attempt}: {retry.reason}; retried after {wait:g} s")
            time.sleep(wait)  # backoff between attempts: the point is to wait
            continue
        return FetchResult(**{**result.__dict__, "attempts": attempt, "notes": tuple(notes)})
    raise AssertionError("unreachable")


def _attempt(
    client: httpx.Client,
    source: str,
    etag: str | None,
    last_modified: str | None,
    policy: FetchPolicy,
    trusted: bool,
) -> FetchResult:
    headers = {"Accept": ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    if client.headers.get("User-Agent", "").startswith("python-httpx"):
        headers["User-Agent"] = user_agent()
    url = source
    try:
        # Redirects are followed here rather than by httpx so that the cap, the http(s)-only
        # rule and the address guard hold for every hop.
        for hops in range(policy.max_redirects + 1):
            # The operator's URL and its own origin are trusted; once a redirect leaves that
            # origin, every later hop is checked, even one coming back.
            trusted = trusted and _origin(url) == _origin(source)
            request = client.build_request(
                "GET",
                url,
                headers=headers,
                timeout=policy.timeout,
                extensions={} if trusted else {UNTRUSTED: True},
            )
            response = client.send(request, stream=True, follow_redirects=False)
            try:
                if not response.has_redirect_location:
                    return _read_response(source, response, etag, last_modified, policy, hops)
                url = _redirect_target(source, response)
            finally:
                response.close()
        raise FeedError(f"{source}: more than {policy.max_redirects} redirects")
    except RefusedAddress as exc:
        where = f"redirected to {url[:200]}, but " if url != source else ""
        raise FeedError(
            f"{source}: {where}{exc}: refused (only the feeds written in "
            "digest.toml may be on loopback or private addresses)"
        ) from None
    except httpx.ConnectTimeout:
        raise _Retry(f"could not connect within {policy.connect_timeout:g} s") from None
    except httpx.TimeoutException:
        raise _Retry(f"timed out after {policy.read_timeout:g} s") from None
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        raise _Retry(f"connection dropped: {_first_line(exc)}") from None
    except httpx.ConnectError as exc:
        raise FeedError(f"{source}: {_connect_reason(exc, url)}") from None
    except httpx.DecodingError:
        raise FeedError(f"{source}: the compressed response is corrupt") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise FeedError(f"{source}: {_first_line(exc)}") from None


def _read_response(
    source: str,
    response: httpx.Response,
    etag: str | None,
    last_modified: str | None,
    policy: FetchPolicy,
    hops: int,
) -> FetchResult:
    new_etag = response.headers.get("ETag")
    new_modified = response.headers.get("Last-Modified")
    common = {
        "url": str(response.url),
        "http_status": response.status_code,
        "content_type": response.headers.get("Content-Type"),
        "redirects": hops,
    }
    if response.status_code == 304:
        return FetchResult(
            source, "not-modified", None, new_etag or etag, new_modified or last_modified, **common
        )
    if not response.is_success:
        reason = response.reason_phrase or _phrase(response.status_code)
        message = f"HTTP {response.status_code} {reason}".rstrip()
        if response.status_code in RETRY_STATUSES:
            raise _Retry(message, _retry_after(response))
        raise FeedError(f"{source}: {message}")
    declared = response.headers.get("Content-Length", "")
    encoded = response.headers.get("Content-Encoding", "identity").lower() != "identity"
    if declared.isdigit() and int(declared) > policy.max_bytes and not encoded:
        raise _too_large(source, policy.max_bytes)
    # httpx's timeout is per network operation; a server trickling bytes gets a total budget.
    budget = 3 * policy.read_timeout
    deadline = time.monotonic() + budget
    body = bytearray()
    for chunk in response.iter_bytes():  # decoded: the cap holds for what gzip inflates to
        body += chunk
        if len(body) > policy.max_bytes:
            raise _too_large(source, policy.max_bytes)
        if time.monotonic() > deadline:
            raise _Retry(f"timed out after {budget:g} s reading the body")
    return FetchResult(source, "ok", bytes(body), new_etag, new_modified, **common)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None


def _redirect_target(source: str, response: httpx.Response) -> str:
    target = urljoin(str(response.url), response.headers["Location"])
    if urlsplit(target).scheme.lower() not in ("http", "https"):
        raise FeedError(f"{source}: redirected to a non-http(s) URL {target[:200]}")
    return target


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


def _connect_reason(exc: Exception, url: str) -> str:
    text = _first_line(exc)
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if any(
        s in lowered
        for s in (
            "name or service",
            "nodename nor servname",
            "getaddrinfo",
            "name resolution",
            "no address associated",
        )
    ):
        return f"cannot resolve host {urlsplit(url).hostname}"
    return f"cannot connect: {text}"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def _too_large(source: str, max_bytes: int) -> FeedError:
    return FeedError(f"{source}: larger than the {max_bytes / 1e6:g} MB limit")
