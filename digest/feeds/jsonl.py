"""The ``digest articles import`` format: one JSON object a line, cleaned like a feed entry.

Fields: ``section``, ``title``, ``url`` (required); ``summary``, ``byline``, ``dateline``,
``image`` (with ``image_width`` and ``image_height``, whole pixels, when known),
``published_at`` (ISO 8601; UTC when it has no offset), ``guid``. Text goes through
the same cleaning as feeds and the key is made the same way, so an article imported and later
seen in a feed is one article. Nothing here touches the store (``digest.ingest`` does).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path

from digest.errors import FeedError
from digest.feeds.identity import article_key, http_url
from digest.feeds.parse import SUMMARY_CHARS
from digest.feeds.text import one_line, plain_text, shorten, split_dateline
from digest.models import Article

_JSONL_FIELDS = {
    "section",
    "title",
    "url",
    "summary",
    "byline",
    "dateline",
    "image",
    "image_width",
    "image_height",
    "published_at",
    "guid",
}


_SIZES = ("image_width", "image_height")


def read_jsonl(
    path: Path, *, sections: Collection[str], now: datetime
) -> tuple[list[Article], list[tuple[int, str]]]:
    """The good articles of a JSON-lines file, and the rejects as (line number, reason)."""
    good: list[Article] = []
    rejects: list[tuple[int, str]] = []
    for number, item in jsonl_rows(path, sections=sections, now=now):
        if isinstance(item, Article):
            good.append(item)
        else:
            rejects.append((number, item))
    return good, rejects


def jsonl_rows(
    path: Path, *, sections: Collection[str], now: datetime
) -> Iterator[tuple[int, Article | str]]:
    """Each non-blank line's number with its Article, or with the reason it was rejected."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise FeedError(f"{path}: no such file", "give the path of a JSON-lines file") from None
    except OSError as exc:
        raise FeedError(f"{path}: cannot read: {exc.strerror or exc}") from None
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield number, _jsonl_article(raw, sections, now)
        except ValueError as exc:
            yield number, str(exc)


def _jsonl_article(raw: bytes, sections: Collection[str], now: datetime) -> Article:
    try:
        row = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg}") from None
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    if unknown := sorted(set(row) - _JSONL_FIELDS):
        raise ValueError(
            f"unknown field {unknown[0]!r} (fields: {', '.join(sorted(_JSONL_FIELDS))})"
        )
    for name, value in row.items():
        if value is not None and not isinstance(value, str) and name not in _SIZES:
            raise ValueError(f"{name} must be a string")
    section = row.get("section")
    if not section:
        raise ValueError("section is missing")
    if section not in sections:
        raise ValueError(f"unknown section {section!r}")
    title = shorten(plain_text(row.get("title") or ""), 300)
    if not title:
        raise ValueError("title is missing")
    url = http_url(row.get("url"))
    if url is None:
        raise ValueError("url must be an absolute http(s) URL")
    image = None
    if row.get("image"):
        image = http_url(row["image"])
        if image is None:
            raise ValueError("image must be an absolute http(s) URL")
    width, height = _image_size(row, image)
    summary_dateline, summary = split_dateline(plain_text(row.get("summary") or ""))
    summary = shorten(summary, SUMMARY_CHARS)
    dateline = one_line(row.get("dateline") or "") or summary_dateline
    return Article(
        key=article_key(row.get("guid"), url, title, summary),
        section=section,
        title=title,
        url=url,
        summary=summary,
        byline=one_line(row.get("byline") or "") or None,
        dateline=dateline,
        image=image,
        image_width=width,
        image_height=height,
        published_at=_iso_date(row.get("published_at"), now),
    )


def _image_size(row: dict, image: str | None) -> tuple[int | None, int | None]:
    """The image's width and height: both or neither, whole pixels from 1 to 20000 (as a
    feed's media elements are read), and only with an image."""
    width, height = (row.get(name) for name in _SIZES)
    if width is None and height is None:
        return None, None
    if width is None or height is None:
        raise ValueError("image_width and image_height go together")
    if image is None:
        raise ValueError("image_width and image_height need an image")
    for name, value in zip(_SIZES, (width, height), strict=True):
        if type(value) is not int or not 0 < value <= 20_000:
            raise ValueError(f"{name} must be a whole number of pixels from 1 to 20000")
    return width, height


def _iso_date(value: str | None, now: datetime) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"published_at {value[:40]!r} is not an ISO 8601 date") from None
    # A date without an offset is taken as UTC, the only reading that does not depend on
    # where the import happens to run.
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return min(parsed.astimezone(UTC), now)
