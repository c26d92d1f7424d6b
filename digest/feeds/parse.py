"""RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 bytes into ``Article`` values, with every problem named.

feedparser reads the document (its loose parser takes over when the XML is ill-formed, and it
guesses the charset of a document that declares none or a wrong one). What comes out is
cleaned here: text is plain (``digest.feeds.text``), links and images are absolute http(s)
URLs resolved against the feed's base, dates are clamped, and each entry gets its key
(``digest.feeds.identity``). A document that yields no usable feed raises one ``FeedError``
line saying why; one that is damaged but still yields entries is used, and the damage is
listed in ``ParsedFeed.warnings``.
"""

from __future__ import annotations

import calendar
import html
import re
import zlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeAlias
from urllib.parse import urlsplit
from xml.sax import SAXParseException

import feedparser

from digest.errors import FeedError
from digest.feeds.identity import article_key, http_url, strip_tracking
from digest.feeds.text import one_line, plain_text, shorten, split_dateline
from digest.models import Article

SUMMARY_CHARS = 400
# Syndication feeds did not exist before this; an earlier date is a placeholder (the epoch,
# year 1) rather than a publication date.
OLDEST_PLAUSIBLE = datetime(1995, 1, 1, tzinfo=UTC)
_GZIP_LIMIT = 50_000_000

# feedparser's document and its entries: dictionaries of its own, which it ships no types for.
_Document: TypeAlias = Any
_Entry: TypeAlias = Any


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    articles: tuple[Article, ...]
    warnings: tuple[str, ...]
    version: str = ""  # feedparser's name for the format: rss20, atom10, rss10, ...
    entries: int = 0  # entries in the document, usable or not
    ill_formed: bool = False  # damaged XML or a guessed charset, used anyway
    link: str | None = None  # the site the feed belongs to
    truncated: int = 0  # entries left out by the max_entries cap (the oldest)


def parse(
    content: bytes,
    *,
    source: str,
    section: str,
    now: datetime,
    summary_chars: int = SUMMARY_CHARS,
    content_type: str | None = None,
    max_entries: int | None = None,
) -> ParsedFeed:
    """The articles of an RSS or Atom document; raises FeedError when it is not a usable feed.

    ``content_type`` is the HTTP header the bytes came with: its charset, when it names one,
    is what the server says the text is in. ``max_entries``: only the newest that many
    entries are read (undated ones count as older than dated ones, in document order), so a
    feed of 100,000 entries costs what one of ``max_entries`` does."""
    content = _gunzip(content, source)
    # Whitespace before the XML declaration is a common server slip that makes the document
    # ill-formed; without it the strict parser (and its better results) can be used.
    stripped = content.lstrip()
    if stripped is not content and stripped.startswith(b"<?xml"):
        content = stripped
    headers = (
        {"content-type": content_type}
        if content_type and "charset=" in content_type.lower()
        else None
    )
    # No base URL is handed to feedparser: it would resolve GUIDs against it too, and an
    # article's identity must not change when its feed moves. Links are resolved below.
    try:
        doc = feedparser.parse(
            content, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
        )
    except Exception as exc:  # third-party parser: whatever it throws is this feed's problem
        raise FeedError(f"{source}: cannot parse: {_first_line(exc)}") from None
    if not doc.entries and (not doc.get("version") or _fatal(doc)):
        raise FeedError(f"{source}: not a feed: {_not_a_feed_reason(content, doc)}")
    warnings = [_used_anyway(doc.bozo_exception)] if doc.bozo else []
    base = _feed_base(doc, source)
    entries = _newest(doc.entries, max_entries)
    truncated = len(doc.entries) - len(entries)
    if truncated:
        warnings.append(
            f"truncated: the feed has {len(doc.entries)} entries, the newest "
            f"{len(entries)} were read (DIGEST_FETCH_MAX_ENTRIES)"
        )
    articles, counts = _articles(
        entries, base=base, section=section, now=now, summary_chars=summary_chars
    )
    if not doc.entries:
        warnings.append("the feed has no entries")
    warnings += [
        f"{n} {'entry' if n == 1 else 'entries'} {what}" for what, n in counts.items() if n
    ]
    title = one_line(doc.feed.get("title", "")) or source
    return ParsedFeed(
        title,
        tuple(articles),
        tuple(warnings),
        version=doc.get("version") or "",
        entries=len(doc.entries),
        ill_formed=bool(doc.bozo),
        link=base,
        truncated=truncated,
    )


def _newest(entries: list[_Entry], limit: int | None) -> list[_Entry]:
    """The newest ``limit`` entries, kept in document order."""
    if limit is None or len(entries) <= limit:
        return entries

    def age(numbered: tuple[int, object]) -> tuple[int, float, int]:
        number, entry = numbered
        published = _published(entry)
        # Dated entries first, newest first; undated ones after them, in document order.
        return (0, -published.timestamp(), number) if published else (1, 0.0, number)

    kept = sorted(enumerate(entries), key=age)[:limit]
    return [entry for _, entry in sorted(kept, key=lambda numbered: numbered[0])]


def _articles(
    entries: list[_Entry], *, base: str | None, section: str, now: datetime, summary_chars: int
) -> tuple[list[Article], dict[str, int]]:
    counts = dict.fromkeys(
        (
            "without a link skipped",
            "that could not be read skipped",
            "repeating an earlier entry's identity skipped",
            "dated in the future (dated now instead)",
            "with an implausibly old date (taken as undated)",
        ),
        0,
    )
    articles: list[Article] = []
    seen: set[str] = set()
    for entry in entries:
        try:
            article = _article(entry, base=base, section=section, summary_chars=summary_chars)
        except Exception:  # one odd entry must not cost the feed; it is counted instead
            counts["that could not be read skipped"] += 1
            continue
        if article is None:
            counts["without a link skipped"] += 1
            continue
        if article.key in seen:
            counts["repeating an earlier entry's identity skipped"] += 1
            continue
        seen.add(article.key)
        if article.published_at is not None and article.published_at > now:
            counts["dated in the future (dated now instead)"] += 1
            article = replace(article, published_at=now)
        elif article.published_at is not None and article.published_at < OLDEST_PLAUSIBLE:
            counts["with an implausibly old date (taken as undated)"] += 1
            article = replace(article, published_at=None)
        articles.append(article)
    return articles, counts


def _fatal(doc: _Document) -> bool:
    """Whether the parser's complaint means the document could not be read as a feed (a
    guessed charset or a wrong content type alone does not)."""
    exc = doc.get("bozo_exception")
    return bool(doc.bozo) and not isinstance(
        exc, (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
    )


def _gunzip(content: bytes, source: str) -> bytes:
    # A gzip file saved under a .xml name (or served without Content-Encoding) still is a feed.
    if not content.startswith(b"\x1f\x8b"):
        return content
    inflater = zlib.decompressobj(wbits=47)
    try:
        data = inflater.decompress(content, _GZIP_LIMIT)
    except zlib.error as exc:
        raise FeedError(f"{source}: not a feed: broken gzip data ({exc})") from None
    if inflater.unconsumed_tail:
        raise FeedError(
            f"{source}: not a feed: gzip data inflating past {_GZIP_LIMIT // 1_000_000} MB"
        )
    return data


def _not_a_feed_reason(content: bytes, doc: _Document) -> str:
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
        return f"ill-formed XML: {exc.getMessage()} at line {exc.getLineNumber()}"
    if isinstance(exc, feedparser.CharacterEncodingOverride):
        said = re.search(r"declared as (\S+), but parsed as (\S+)", str(exc))
        if said:  # feedparser says "declared as utf-8" of a document that declares nothing
            return f"charset guessed: not {said[1]} as declared or assumed, read as {said[2]}"
        return f"charset guessed: {_first_line(exc)}"
    if isinstance(exc, feedparser.CharacterEncodingUnknown):
        return f"unknown charset: {_first_line(exc)}"
    return _first_line(exc) if exc is not None else "ill-formed"


def _used_anyway(exc: Exception | None) -> str:
    reason = _bozo_reason(exc)
    if isinstance(exc, SAXParseException):
        return reason.replace("ill-formed XML:", "ill-formed XML (used anyway):", 1)
    return f"{reason} (used anyway)"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _feed_base(doc: _Document, source: str) -> str | None:
    """What relative links resolve against: the feed's own URL, or for a local file the
    site's link, made absolute with the feed's self link or id when it is relative itself
    (xml:base was already applied by feedparser)."""
    if urlsplit(source).scheme.lower() in ("http", "https"):
        return source
    feed = doc.feed
    self_link = next(
        (
            http_url(link.get("href"))
            for link in feed.get("links") or []
            if link.get("rel") == "self" and http_url(link.get("href"))
        ),
        None,
    )
    anchor = self_link or http_url(feed.get("id"))
    return http_url(feed.get("link"), anchor) or anchor


def _article(
    entry: _Entry, *, base: str | None, section: str, summary_chars: int
) -> Article | None:
    url = http_url(entry.get("link"), base)
    if url is None:
        return None
    url = strip_tracking(url)
    summary_html, summary_is_html = _summary_source(entry)
    summary = plain_text(summary_html, is_html=summary_is_html)
    dateline, summary = split_dateline(summary)
    summary = shorten(summary, summary_chars)
    title = _entry_title(entry) or shorten(summary, 90) or url
    key = article_key(entry.get("id"), url, title, summary)
    image, image_size = _image(entry, summary_html, base or url)
    return Article(
        key=key,
        section=section,
        title=title,
        url=url,
        summary=summary,
        byline=_byline(entry),
        dateline=dateline,
        image=image,
        image_width=image_size[0],
        image_height=image_size[1],
        published_at=_published(entry),
        categories=_categories(entry),
    )


# RSS says nothing of a title's type and feedparser calls it plain text, yet feeds put markup
# there; a title holding something tag-like is read as HTML so no markup shows in the email.
_TAG_LIKE = re.compile(r"<[a-zA-Z/!]")


def _entry_title(entry: _Entry) -> str:
    detail = entry.get("title_detail") or {}
    title = entry.get("title", "")
    is_html = detail.get("type") != "text/plain" or bool(_TAG_LIKE.search(title))
    return shorten(plain_text(title, is_html=is_html), 300)


def _summary_source(entry: _Entry) -> tuple[str, bool]:
    candidates = [entry.get("summary_detail"), *(entry.get("content") or [])]
    for detail in candidates:
        if detail and (detail.get("value") or "").strip():
            return detail["value"], detail.get("type") != "text/plain"
    return "", False


def _categories(entry: _Entry) -> tuple[str, ...]:
    found: list[str] = []
    for tag in entry.get("tags") or []:
        for value in (tag.get("term"), tag.get("label")):
            text = plain_text(value or "")
            if text and text not in found:
                found.append(text)
    return tuple(found)


_ADDRESS_AND_NAME = re.compile(r"^[^\s@()]+@[^\s()]+\s*\((?P<name>[^()]+)\)$")


def _byline(entry: _Entry) -> str | None:
    raw = plain_text(entry.get("author") or "")
    # RSS writes "address (Name)"; feedparser's own split of it garbles non-ASCII names.
    if match := _ADDRESS_AND_NAME.match(raw):
        name = one_line(match["name"])
    else:
        name = raw if "@" not in raw else one_line((entry.get("author_detail") or {}).get("name"))
    # An address alone is not a byline, and a reader's digest is no place to publish it.
    return shorten(name, 200) if name and "@" not in name else None


def _published(entry: _Entry) -> datetime | None:
    for name in ("published_parsed", "updated_parsed", "created_parsed"):
        # dict.get: feedparser's own get() warns about its updated/published aliasing.
        parsed = dict.get(entry, name)
        if parsed:
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return None


_IMAGE_EXT = re.compile(r"\.(?:jpe?g|png|gif|webp|avif)(?:$|[?#])", re.I)
_IMG_SRC = re.compile(r"""<img\b[^>]*?\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)


_NO_SIZE: tuple[int | None, int | None] = (None, None)


def _image(
    entry: _Entry, summary_html: str, base: str
) -> tuple[str | None, tuple[int | None, int | None]]:
    """The entry's picture: media:content, media:thumbnail, an image enclosure, the first
    <img> of its text, or its itunes:image, in that order; with its size in pixels when
    the media element gives one (width and height), else (None, None)."""
    for media in entry.get("media_content") or []:
        if _is_image(
            media.get("medium") or "", media.get("type") or "", media.get("url") or ""
        ) and (found := http_url(media.get("url"), base)):
            return found, _size(media)
    for thumb in entry.get("media_thumbnail") or []:
        if found := http_url(thumb.get("url"), base):
            return found, _size(thumb)
    for enclosure in entry.get("enclosures") or []:
        if _is_image("", enclosure.get("type") or "", enclosure.get("href") or "") and (
            found := http_url(enclosure.get("href"), base)
        ):
            return found, _NO_SIZE
    for fragment in [summary_html] + [c.get("value") or "" for c in entry.get("content") or []]:
        for match in _IMG_SRC.finditer(fragment):
            if found := http_url(html.unescape(next(g for g in match.groups() if g)), base):
                return found, _NO_SIZE
    image = entry.get("image")
    return (http_url(image.get("href"), base) if isinstance(image, dict) else None), _NO_SIZE


def _size(media: dict) -> tuple[int | None, int | None]:
    """A media element's width and height, both whole pixels from 1 to 20000, else none."""
    try:
        width, height = int(str(media.get("width", ""))), int(str(media.get("height", "")))
    except ValueError:
        return _NO_SIZE
    if 0 < width <= 20_000 and 0 < height <= 20_000:
        return width, height
    return _NO_SIZE


def _is_image(medium: str, mime: str, url: str) -> bool:
    if medium or mime:
        return medium == "image" or mime.lower().startswith("image/")
    return bool(_IMAGE_EXT.search(url))
