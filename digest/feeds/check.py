"""What digest would take from one feed, and every problem found, without storing anything.

``check_feed`` runs the same fetch and parse as ingest and describes the result: the
response (status, type, redirects, validators, size, time), each entry digest would take
(title, link, date, image, summary length, byline, dateline, categories and, for a feed of
the newsletter, the section it lands in) and the problems. A feed is unusable when it cannot
be fetched, is not a feed, or has entries of which none can be used; ``reason`` then says
why in one line. Everything else, however messy, is usable with its problems listed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from digest.errors import FeedError
from digest.feeds.fetch import FetchPolicy, FetchResult, fetch, new_client
from digest.feeds.parse import SUMMARY_CHARS, parse
from digest.feeds.routing import Router

_FEED_TYPES = ("xml", "rss", "atom", "rdf")


@dataclass(frozen=True)
class CheckedEntry:
    title: str
    link: str
    date: datetime | None
    image: str | None
    summary_chars: int
    byline: str | None
    dateline: str | None
    categories: tuple[str, ...]
    key: str
    section: str | None = None  # where it would be filed (None: left out, or not known)


@dataclass(frozen=True)
class FeedCheck:
    source: str
    usable: bool
    reason: str | None = None  # why it is unusable, one line
    title: str | None = None
    version: str | None = None
    http_status: int | None = None
    content_type: str | None = None
    final_url: str | None = None
    redirects: int = 0
    attempts: int = 1
    bytes: int = 0
    etag: str | None = None
    last_modified: str | None = None
    elapsed: float = 0.0
    entries_in_document: int = 0
    entries: tuple[CheckedEntry, ...] = ()
    problems: tuple[str, ...] = field(default=())


def check_feed(
    source: str,
    *,
    now: datetime,
    policy: FetchPolicy | None = None,
    contact: str | None = None,
    summary_chars: int = SUMMARY_CHARS,
    section: str | None = None,
    router: Router | None = None,
    stale_days: int = 0,
) -> FeedCheck:
    """Fetch and parse ``source`` (URL or path) and say what digest would take from it."""
    policy = policy or FetchPolicy()
    started = time.perf_counter()
    with new_client(policy=policy, contact=contact, connections=1) as client:
        try:
            fetched = fetch(source, client=client, policy=policy)
        except FeedError as exc:
            return FeedCheck(
                source, False, _reason(exc, source), elapsed=time.perf_counter() - started
            )
    info = _response_info(fetched, time.perf_counter() - started)
    try:
        parsed = parse(
            fetched.content or b"",
            source=source,
            section=section or "",
            now=now,
            summary_chars=summary_chars,
            content_type=fetched.content_type,
            max_entries=policy.max_entries,
        )
    except FeedError as exc:
        return FeedCheck(source, False, _reason(exc, source), **info)
    entries = tuple(
        CheckedEntry(
            title=a.title,
            link=a.url,
            date=a.published_at,
            image=a.image,
            summary_chars=len(a.summary),
            byline=a.byline,
            dateline=a.dateline,
            categories=a.categories,
            key=a.key,
            section=router.section_for(a.categories) if router else section,
        )
        for a in parsed.articles
    )
    problems = list(fetched.notes) + _response_problems(fetched) + list(parsed.warnings)
    if router is not None and (left := sum(1 for e in entries if e.section is None)):
        problems.append(
            f"{left} {'entry matches' if left == 1 else 'entries match'} no "
            "section's categories and would be left out"
        )
    dates = [e.date for e in entries if e.date is not None]
    if stale_days and dates and now - max(dates) > timedelta(days=stale_days):
        problems.append(
            f"its newest entry is {(now - max(dates)).days} days old ({max(dates):%Y-%m-%d}): "
            f"the feed looks abandoned (over {stale_days} days; DIGEST_FEED_STALE_DAYS), and "
            "entries already that old when first seen are never selected (max_age_hours)"
        )
    usable, reason = True, None
    if parsed.entries and not entries:
        usable = False
        reason = f"none of its {parsed.entries} entries can be used ({'; '.join(parsed.warnings)})"
    return FeedCheck(
        source,
        usable,
        reason,
        title=parsed.title,
        version=parsed.version or None,
        entries_in_document=parsed.entries,
        entries=entries,
        problems=tuple(problems),
        **info,
    )


def _response_info(fetched: FetchResult, elapsed: float) -> dict:
    return {
        "http_status": fetched.http_status,
        "content_type": fetched.content_type,
        "final_url": fetched.url,
        "redirects": fetched.redirects,
        "attempts": fetched.attempts,
        "bytes": len(fetched.content or b""),
        "etag": fetched.etag,
        "last_modified": fetched.last_modified,
        "elapsed": elapsed,
    }


def _response_problems(fetched: FetchResult) -> list[str]:
    if fetched.http_status is None:
        return []  # a local file: no HTTP to judge
    problems = []
    if not fetched.etag and not fetched.last_modified:
        problems.append(
            "the server sends neither ETag nor Last-Modified: every fetch downloads the whole feed"
        )
    kind = (fetched.content_type or "").split(";")[0].strip().lower()
    if not any(word in kind for word in _FEED_TYPES):
        problems.append(
            f"served as {kind or 'no content type'}, not as a feed type (read as a feed anyway)"
        )
    if fetched.redirects and fetched.url and urlsplit(fetched.url) != urlsplit(fetched.source):
        problems.append(
            f"redirected ({fetched.redirects}x) to {fetched.url}: consider using that address"
        )
    return problems


def _reason(exc: FeedError, source: str) -> str:
    return str(exc).removeprefix(f"{source}: ")
