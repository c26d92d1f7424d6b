"""The ingest stage: the newsletter's feeds (or an import file) into the store.

``ingest`` walks every feed of the newsletter: conditional fetch with the validators the store
kept, parse, save, record how it went. One broken feed is recorded and reported; the others go
on. ``read_jsonl`` reads the ``digest articles import`` format (one JSON object a line) with the
same cleaning as feeds; ``import_articles`` stores its good rows in one transaction.

The same article is never in two sections: an article whose identity is already stored under
another section keeps that first section, and the copy from the later feed is dropped here,
before the store would re-file it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx

from digest.config import Newsletter
from digest.errors import FeedError
from digest.feeds import (
    SUMMARY_CHARS,
    article_key,
    fetch,
    http_url,
    new_client,
    one_line,
    parse,
    plain_text,
    shorten,
    split_dateline,
)
from digest.models import Article
from digest.store import Store


@dataclass(frozen=True)
class FeedOutcome:
    url: str
    section: str
    status: str  # "ok", "not-modified", "error"
    added: int
    updated: int
    entries: int
    warnings: tuple[str, ...]
    error: str | None  # the reason, without the feed's URL (that is ``url``)


@dataclass(frozen=True)
class IngestReport:
    feeds: tuple[FeedOutcome, ...]

    @property
    def added(self) -> int:
        return sum(f.added for f in self.feeds)

    @property
    def updated(self) -> int:
        return sum(f.updated for f in self.feeds)

    @property
    def failed(self) -> int:
        return sum(1 for f in self.feeds if f.status == "error")


def ingest(store: Store, newsletter: Newsletter, now: datetime, *,
           client: httpx.Client | None = None,
           on_feed: Callable[[FeedOutcome], None] | None = None) -> IngestReport:
    """Fetch every feed of the newsletter, one after another, and store what is new."""
    store.sync_sections((s.slug, s.title, s.feeds) for s in newsletter.sections)
    # A URL listed under two sections belongs to the last one, as sync_sections files it.
    feed_sections = {url: s.slug for s in newsletter.sections for url in s.feeds}
    filed = _stored_sections(store)
    own_client = client is None
    http = new_client(contact=newsletter.website) if own_client else client
    outcomes: list[FeedOutcome] = []
    try:
        for url, section in feed_sections.items():
            outcome = _ingest_feed(store, url, section, now, http, filed)
            outcomes.append(outcome)
            if on_feed is not None:
                on_feed(outcome)
    finally:
        if own_client:
            http.close()
    return IngestReport(tuple(outcomes))


def _ingest_feed(store: Store, url: str, section: str, now: datetime, client: httpx.Client,
                 filed: dict[str, str]) -> FeedOutcome:
    known = store.feed(url)
    try:
        fetched = fetch(url, etag=known.etag if known else None,
                        last_modified=known.last_modified if known else None, client=client)
        if fetched.status == "not-modified":
            store.record_feed(url, status="not-modified", now=now)
            return FeedOutcome(url, section, "not-modified", 0, 0, 0, (), None)
        parsed = parse(fetched.content or b"", source=url, section=section, now=now)
    except FeedError as exc:
        reason = _reason(exc, url)
        store.record_feed(url, status="error", now=now, error=reason)
        return FeedOutcome(url, section, "error", 0, 0, 0, (), reason)
    articles, elsewhere = _first_section_wins(parsed.articles, filed)
    added, updated = store.save_articles(articles, now)
    # Validators are kept only once the articles are safely stored: a crash before this line
    # means a full fetch next time, never a lost article.
    store.record_feed(url, status="ok", now=now, etag=fetched.etag,
                      last_modified=fetched.last_modified, entries=len(parsed.articles))
    warnings = parsed.warnings
    if elsewhere:
        warnings += (f"{elsewhere} {'entry' if elsewhere == 1 else 'entries'} already filed "
                     "under another section kept there",)
    return FeedOutcome(url, section, "ok", added, updated, len(parsed.articles), warnings, None)


def _stored_sections(store: Store) -> dict[str, str]:
    """Every stored article's key with its section."""
    return {a.key: a.section for a in store.articles()}


def _first_section_wins(articles: Iterable[Article], filed: dict[str, str]
                        ) -> tuple[list[Article], int]:
    """The articles not already filed under another section (and ``filed`` updated with
    them), and how many were."""
    kept: list[Article] = []
    elsewhere = 0
    for article in articles:
        first = filed.setdefault(article.key, article.section)
        if first != article.section:
            elsewhere += 1
        else:
            kept.append(article)
    return kept, elsewhere


def _reason(exc: FeedError, url: str) -> str:
    return str(exc).removeprefix(f"{url}: ")


# -- JSON lines import ------------------------------------------------------------------------

_JSONL_FIELDS = {"section", "title", "url", "summary", "byline", "dateline", "image",
                 "published_at", "guid"}


def import_articles(store: Store, path: Path, now: datetime, *, sections: Collection[str]
                    ) -> tuple[int, int, list[tuple[int, str]]]:
    """Store the good rows of a JSON-lines file in one transaction.

    Returns (added, updated, rejects), rejects being (line number, reason). The sections must
    already be in the store (``Store.sync_sections``).
    """
    filed = _stored_sections(store)
    first_line: dict[str, int] = {}
    good: list[Article] = []
    rejects: list[tuple[int, str]] = []
    for number, item in _jsonl_rows(path, sections=sections, now=now):
        if isinstance(item, str):
            rejects.append((number, item))
        elif item.key in first_line:
            rejects.append((number, f"the same article as line {first_line[item.key]}"))
        elif filed.get(item.key, item.section) != item.section:
            rejects.append((number, f"already stored under section {filed[item.key]!r}"))
        else:
            first_line[item.key] = number
            good.append(item)
    added, updated = store.save_articles(good, now)
    return added, updated, rejects


def read_jsonl(path: Path, *, sections: Collection[str], now: datetime
               ) -> tuple[list[Article], list[tuple[int, str]]]:
    """The good articles of a JSON-lines file, and the rejects as (line number, reason)."""
    good: list[Article] = []
    rejects: list[tuple[int, str]] = []
    for number, item in _jsonl_rows(path, sections=sections, now=now):
        if isinstance(item, Article):
            good.append(item)
        else:
            rejects.append((number, item))
    return good, rejects


def _jsonl_rows(path: Path, *, sections: Collection[str], now: datetime
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
        raise ValueError(f"unknown field {unknown[0]!r} "
                         f"(fields: {', '.join(sorted(_JSONL_FIELDS))})")
    for name, value in row.items():
        if value is not None and not isinstance(value, str):
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
    summary_dateline, summary = split_dateline(plain_text(row.get("summary") or ""))
    summary = shorten(summary, SUMMARY_CHARS)
    dateline = one_line(row.get("dateline") or "") or summary_dateline
    return Article(key=article_key(row.get("guid"), url, title, summary), section=section,
                   title=title, url=url, summary=summary,
                   byline=one_line(row.get("byline") or "") or None, dateline=dateline,
                   image=image, published_at=_iso_date(row.get("published_at"), now))


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
        parsed = parsed.replace(tzinfo=timezone.utc)
    return min(parsed.astimezone(timezone.utc), now)
