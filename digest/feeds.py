"""Feeds in, articles out: fetch, parse, sanitize, identify.

``fetch`` gets a feed's bytes: http(s) with a conditional GET, or a local file. ``parse`` turns
RSS 0.9x/1.0/2.0 or Atom bytes into ``Article`` values whose text is plain (no markup at all)
and whose URLs are absolute http(s). ``article_key`` is the identity that makes fetching twice
harmless. Nothing here touches the store; ``digest.ingest`` wires these to it (and reads the
``digest articles import`` files with the same cleaning).
"""

from __future__ import annotations

import calendar
import hashlib
import html
import re
import time
import zlib
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit, urlunsplit
from urllib.request import url2pathname
from xml.sax import SAXParseException

import feedparser
import httpx
import nh3

from digest import __version__
from digest.errors import FeedError
from digest.models import Article

MAX_REDIRECTS = 5
SUMMARY_CHARS = 400
ACCEPT = ("application/rss+xml, application/atom+xml, application/rdf+xml, "
          "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5")


def user_agent(contact: str | None = None) -> str:
    """An honest User-Agent: what fetches, and where its operator can be found."""
    return f"digest/{__version__} (+{contact})" if contact else f"digest/{__version__}"


def new_client(*, timeout: float = 20.0, contact: str | None = None) -> httpx.Client:
    """The HTTP client ingest shares across feeds (redirects are followed by ``fetch``)."""
    return httpx.Client(timeout=timeout, follow_redirects=False,
                        headers={"User-Agent": user_agent(contact)})


# -- fetch ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FetchResult:
    source: str
    status: str  # "ok" or "not-modified"
    content: bytes | None  # None when not-modified
    etag: str | None
    last_modified: str | None


def fetch(source: str, *, etag: str | None = None, last_modified: str | None = None,
          client: httpx.Client | None = None, timeout: float = 20.0,
          max_bytes: int = 10_000_000) -> FetchResult:
    """A feed's bytes, or "not-modified" when the server says they did not change."""
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        if client is not None:
            return _fetch_http(client, source, etag, last_modified, timeout, max_bytes)
        with new_client(timeout=timeout) as own:
            return _fetch_http(own, source, etag, last_modified, timeout, max_bytes)
    if scheme == "file" or not re.match(r"^[a-z][a-z0-9+.-]*://", source, re.I):
        return _fetch_file(source, max_bytes)
    raise FeedError(f"{source}: unsupported URL scheme {scheme}://",
                    "use http://, https:// or a file path")


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


def _fetch_http(client: httpx.Client, source: str, etag: str | None, last_modified: str | None,
                timeout: float, max_bytes: int) -> FetchResult:
    headers = {"Accept": ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    if client.headers.get("User-Agent", "").startswith("python-httpx"):
        headers["User-Agent"] = user_agent()
    url = source
    try:
        # Redirects are followed here rather than by httpx so that the cap and the http(s)-only
        # rule hold whatever client the caller passes in.
        for _ in range(MAX_REDIRECTS + 1):
            request = client.build_request("GET", url, headers=headers, timeout=timeout)
            response = client.send(request, stream=True, follow_redirects=False)
            try:
                if not response.has_redirect_location:
                    return _read_response(source, response, etag, last_modified,
                                          timeout, max_bytes)
                url = _redirect_target(source, response)
            finally:
                response.close()
        raise FeedError(f"{source}: more than {MAX_REDIRECTS} redirects")
    except httpx.TimeoutException:
        raise FeedError(f"{source}: timed out after {timeout:g} s") from None
    except httpx.ConnectError as exc:
        raise FeedError(f"{source}: {_connect_reason(exc, url)}") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise FeedError(f"{source}: {_first_line(exc)}") from None


def _read_response(source: str, response: httpx.Response, etag: str | None,
                   last_modified: str | None, timeout: float, max_bytes: int) -> FetchResult:
    new_etag = response.headers.get("ETag")
    new_modified = response.headers.get("Last-Modified")
    if response.status_code == 304:
        return FetchResult(source, "not-modified", None, new_etag or etag,
                           new_modified or last_modified)
    if not response.is_success:
        reason = response.reason_phrase or _phrase(response.status_code)
        raise FeedError(f"{source}: HTTP {response.status_code} {reason}".rstrip())
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(source, max_bytes)
    # httpx's timeout is per network operation; a server trickling bytes gets a total budget.
    deadline = time.monotonic() + 3 * timeout
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(source, max_bytes)
        if time.monotonic() > deadline:
            raise FeedError(f"{source}: timed out after {3 * timeout:g} s reading the body")
    return FetchResult(source, "ok", bytes(body), new_etag, new_modified)


def _redirect_target(source: str, response: httpx.Response) -> str:
    target = urljoin(str(response.url), response.headers["Location"])
    if urlsplit(target).scheme.lower() not in ("http", "https"):
        raise FeedError(f"{source}: redirected to a non-http(s) URL {target[:200]}")
    return target


def _connect_reason(exc: Exception, url: str) -> str:
    text = _first_line(exc)
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if any(s in lowered for s in ("name or service", "nodename nor servname", "getaddrinfo",
                                  "name resolution", "no address associated")):
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


# -- parse ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ParsedFeed:
    title: str
    articles: tuple[Article, ...]
    warnings: tuple[str, ...]


def parse(content: bytes, *, source: str, section: str, now: datetime) -> ParsedFeed:
    """The articles of an RSS or Atom document; raises FeedError when it is not a feed."""
    content = _gunzip(content, source)
    # Whitespace before the XML declaration is a common server slip that makes the document
    # ill-formed; without it the strict parser (and its better results) can be used.
    if content[:1].isspace() and content.lstrip().startswith(b"<?xml"):
        content = content.lstrip()
    # No base URL is handed to feedparser: it would resolve GUIDs against it too, and an
    # article's identity must not change when its feed moves. Links are resolved below.
    try:
        doc = feedparser.parse(content)
    except Exception as exc:  # third-party parser: whatever it throws is this feed's problem
        raise FeedError(f"{source}: cannot parse: {_first_line(exc)}") from None
    if not doc.entries and (doc.bozo or not doc.get("version")):
        raise FeedError(f"{source}: not a feed: {_not_a_feed_reason(content, doc)}")
    warnings = [_used_anyway(doc.bozo_exception)] if doc.bozo else []
    base = _feed_base(doc, source)
    articles: list[Article] = []
    seen: set[str] = set()
    linkless = duplicates = future = 0
    for entry in doc.entries:
        article = _article(entry, base=base, section=section)
        if article is None:
            linkless += 1
            continue
        if article.key in seen:
            duplicates += 1
            continue
        seen.add(article.key)
        if article.published_at is not None and article.published_at > now:
            future += 1
            article = replace(article, published_at=now)
        articles.append(article)
    for count, what in ((linkless, "without a link skipped"),
                        (duplicates, "repeating an earlier entry's identity skipped"),
                        (future, "dated in the future (dated now instead)")):
        if count:
            warnings.append(f"{count} {'entry' if count == 1 else 'entries'} {what}")
    title = one_line(doc.feed.get("title", "")) or source
    return ParsedFeed(title, tuple(articles), tuple(warnings))


def _gunzip(content: bytes, source: str, limit: int = 50_000_000) -> bytes:
    # A gzip file saved under a .xml name (or served without Content-Encoding) still is a feed.
    if not content.startswith(b"\x1f\x8b"):
        return content
    inflater = zlib.decompressobj(wbits=47)
    try:
        data = inflater.decompress(content, limit)
    except zlib.error as exc:
        raise FeedError(f"{source}: not a feed: broken gzip data ({exc})") from None
    if inflater.unconsumed_tail:
        raise FeedError(f"{source}: not a feed: gzip data inflating past {limit // 1_000_000} MB")
    return data


def _not_a_feed_reason(content: bytes, doc) -> str:
    head = content.lstrip()[:512].lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head")) or b"<html" in head:
        return "an HTML page, not RSS or Atom"
    if not content.strip():
        return "the document is empty"
    if doc.bozo:
        return _bozo_reason(doc.bozo_exception)
    return "no RSS or Atom element found"


def _bozo_reason(exc: Exception | None) -> str:
    if isinstance(exc, SAXParseException):
        return f"ill-formed XML: {_sax_detail(exc)}"
    return _first_line(exc) if exc is not None else "ill-formed"


def _used_anyway(exc: Exception | None) -> str:
    if isinstance(exc, SAXParseException):
        return f"ill-formed XML (used anyway): {_sax_detail(exc)}"
    return f"{_bozo_reason(exc)} (used anyway)"


def _sax_detail(exc: SAXParseException) -> str:
    return f"{exc.getMessage()} at line {exc.getLineNumber()}"


def _feed_base(doc, source: str) -> str | None:
    """What relative links resolve against: the feed's own URL, or for a local file the
    channel's link (xml:base was already applied by feedparser)."""
    if urlsplit(source).scheme.lower() in ("http", "https"):
        return source
    return http_url(doc.feed.get("link"))


def _article(entry, *, base: str | None, section: str) -> Article | None:
    url = http_url(entry.get("link"), base)
    if url is None:
        return None
    summary_html, summary_is_html = _summary_source(entry)
    summary = plain_text(summary_html, is_html=summary_is_html)
    dateline, summary = split_dateline(summary)
    summary = shorten(summary, SUMMARY_CHARS)
    title = _entry_title(entry) or shorten(summary, 90) or url
    key = article_key(entry.get("id"), url, title, summary)
    return Article(key=key, section=section, title=title, url=url, summary=summary,
                   byline=_byline(entry), dateline=dateline,
                   image=_image(entry, summary_html, base or url), published_at=_published(entry))


def _entry_title(entry) -> str:
    detail = entry.get("title_detail") or {}
    return shorten(plain_text(entry.get("title", ""),
                              is_html=detail.get("type") != "text/plain"), 300)


def _summary_source(entry) -> tuple[str, bool]:
    candidates = [entry.get("summary_detail")] + list(entry.get("content") or [])
    for detail in candidates:
        if detail and (detail.get("value") or "").strip():
            return detail["value"], detail.get("type") != "text/plain"
    return "", False


_ADDRESS_AND_NAME = re.compile(r"^[^\s@()]+@[^\s()]+\s*\((?P<name>[^()]+)\)$")


def _byline(entry) -> str | None:
    raw = one_line(entry.get("author") or "")
    # RSS writes "address (Name)"; feedparser's own split of it garbles non-ASCII names.
    if match := _ADDRESS_AND_NAME.match(raw):
        name = one_line(match["name"])
    else:
        name = raw if "@" not in raw else one_line((entry.get("author_detail") or {}).get("name"))
    # An address alone is not a byline, and a reader's digest is no place to publish it.
    return shorten(name, 200) if name and "@" not in name else None


def _published(entry) -> datetime | None:
    for field in ("published_parsed", "updated_parsed", "created_parsed"):
        # dict.get: feedparser's own get() warns about its updated/published aliasing.
        parsed = dict.get(entry, field)
        if parsed:
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), tz=timezone.utc)
            except (OverflowError, ValueError, OSError):
                continue
    return None


_IMAGE_EXT = re.compile(r"\.(?:jpe?g|png|gif|webp|avif)(?:$|[?#])", re.I)
_IMG_SRC = re.compile(r"""<img\b[^>]*?\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)


def _image(entry, summary_html: str, base: str) -> str | None:
    for media in entry.get("media_content") or []:
        if _is_image(media.get("medium") or "", media.get("type") or "", media.get("url") or ""):
            if found := http_url(media.get("url"), base):
                return found
    for thumb in entry.get("media_thumbnail") or []:
        if found := http_url(thumb.get("url"), base):
            return found
    for enclosure in entry.get("enclosures") or []:
        if _is_image("", enclosure.get("type") or "", enclosure.get("href") or ""):
            if found := http_url(enclosure.get("href"), base):
                return found
    for fragment in [summary_html] + [c.get("value") or "" for c in entry.get("content") or []]:
        for match in _IMG_SRC.finditer(fragment):
            if found := http_url(html.unescape(next(g for g in match.groups() if g)), base):
                return found
    return None


def _is_image(medium: str, mime: str, url: str) -> bool:
    if medium or mime:
        return medium == "image" or mime.lower().startswith("image/")
    return bool(_IMAGE_EXT.search(url))


# -- text and URLs ----------------------------------------------------------------------------

_BLOCK_TAG = re.compile(r"<(?=/?(?:p|div|br|hr|li|ul|ol|dd|dt|h[1-6]|tr|td|th|table|"
                        r"blockquote|pre|section|article|figure|figcaption|header|footer)\b)",
                        re.I)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff]")
_DROPPED_WITH_CONTENT = {"script", "style", "template", "noscript", "iframe", "object"}


def plain_text(value: str, *, is_html: bool = True) -> str:
    """Text without any markup: tags removed (scripts and styles with their content),
    entities decoded, whitespace collapsed to single spaces."""
    if is_html:
        # Block boundaries become spaces so that "<p>a</p><p>b</p>" does not read "ab".
        value = nh3.clean(_BLOCK_TAG.sub(" <", value), tags=set(), attributes={},
                          clean_content_tags=_DROPPED_WITH_CONTENT, link_rel=None)
        value = html.unescape(value)
    return one_line(value)


def one_line(value: str) -> str:
    """Whitespace (CR and LF included) collapsed to single spaces, control characters gone."""
    return " ".join(_CONTROL.sub(" ", value or "").split())


def shorten(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to about ``limit`` characters, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:-\u2013\u2014") + "\u2026"


_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]{0,6}\.?"
_PLACE_WORD = r"(?:[A-Z][\w.'\u2019-]*|de|da|do|del|di|la|le|of|am|an|sur|al|el)"
_DATELINE = re.compile(
    rf"^(?P<dateline>[A-Z][\w.'\u2019-]*(?:,? {_PLACE_WORD}){{0,5}}"  # place, up to 6 words
    r" \([A-Z][\w&.' -]{0,38}\)"  # (agency)
    rf" {_MONTH} \d{{1,2}}, \d{{4}})"  # Nov 24, 2026
    r"\s+[-\u2013\u2014]+\s*")


def split_dateline(summary: str) -> tuple[str | None, str]:
    """("Seoul (AFP) Nov 24, 2026", rest) when the summary opens with a wire dateline."""
    match = _DATELINE.match(summary)
    if not match:
        return None, summary
    return match["dateline"], summary[match.end():]


_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"


def http_url(value: str | None, base: str | None = None) -> str | None:
    """An absolute http(s) URL, percent-encoding what may not appear raw; None otherwise."""
    value = one_line(value or "")
    if not value:
        return None
    try:
        url = urljoin(base, value) if base else value
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if not parts.netloc.isascii():
        # Percent-encoding would break an international host name; IDNA is its ASCII form.
        try:
            port = f":{parts.port}" if parts.port else ""
            url = urlunsplit(parts._replace(netloc=parts.hostname.encode("idna").decode() + port))
        except (UnicodeError, ValueError):
            return None
    return quote(url, safe=_URL_SAFE)


_TRACKING = re.compile(r"^(?:utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|yclid|mc_cid|"
                       r"mc_eid|_hsenc|_hsmi|mkt_tok|igshid|ns_(?:mchannel|campaign|source|"
                       r"linkname|fee))$", re.I)


def canonical_url(link: str) -> str:
    """``link`` without tracking parameters or fragment, scheme and host lower-cased."""
    parts = urlsplit(link.strip())
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port and (parts.scheme.lower(), port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    # Filtered textually so that the parameters kept keep their exact spelling and order.
    query = "&".join(p for p in parts.query.split("&")
                     if p and not _TRACKING.match(p.split("=", 1)[0]))
    return urlunsplit((parts.scheme.lower(), host, parts.path or "/", query, ""))


def article_key(guid: str | None, link: str | None, title: str, summary: str) -> str:
    """The article's identity: its GUID, else its canonical link, else a content hash."""
    guid = one_line(guid or "")
    if guid:
        return f"guid:{guid}"
    if link and link.strip():
        return f"url:{canonical_url(link)}"
    digest = hashlib.sha256(f"{one_line(title)}\n{one_line(summary)}".encode()).hexdigest()
    return f"sha256:{digest}"


def __getattr__(name: str):
    # read_jsonl belongs to the import stage but is part of this module's published surface.
    if name == "read_jsonl":
        from digest.ingest import read_jsonl
        return read_jsonl
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
