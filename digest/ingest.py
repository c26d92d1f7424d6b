"""The ingest stage: the newsletter's feeds (or an import file) into the store, and their health.

``ingest`` fetches every feed of the newsletter at once (a thread pool of
``Settings.fetch_concurrency``: fetching waits on the network and the workers share one HTTP
connection pool) and parses each document as it arrives, then stores the results one feed
after another in the newsletter's order, so the outcome does not depend on which server
answered first. Parsing is CPU-bound Python, which threads cannot run side by side: a large
document (``POOL_BYTES`` and more) is parsed in a pool of worker processes, one per core,
started at the first such document, while this process fetches and stores; a small one is
parsed in its fetching thread, where handing it over would cost more than parsing it. A
conditional GET answered 304 stores nothing and costs no parse (``FeedOutcome.parsed``). One
broken feed, whatever breaks, is recorded with its reason and the others go on.

A feed listed under ``[[routers]]`` covers several sections: each of its entries is filed by
its categories (``digest.feeds.routing``). The same article is never in two sections: an
article whose identity is already stored under another section keeps that first section,
and the copy from the later feed is dropped here, before the store would re-file it.

Each feed's health (last status and error, last success, entries, failures in a row and
since when) is recorded on every run; ``feed_health`` lists it and ``failing_feeds`` names
the feeds failing for days, for ``digest send``'s summary.

``import_articles`` stores the good rows of a ``digest articles import`` file (read by
``digest.feeds.jsonl``, with the same cleaning as feeds) in one transaction.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from digest.config import Newsletter
from digest.errors import FeedError
from digest.feeds import FetchPolicy, FetchResult, ParsedFeed, fetch, new_client, one_line, parse
from digest.feeds.fetch import FeedClient
from digest.feeds.jsonl import jsonl_rows, read_jsonl
from digest.feeds.routing import Router
from digest.models import Article
from digest.store.articles import FeedRecord
from digest.store.protocols import ArticleStore

ROUTED = "(by category)"
# A document of at least this many bytes is parsed in a worker process. feedparser takes
# about 0.5 ms of CPU per kilobyte; a worker costs about 0.25 s of CPU to start (an
# interpreter and the parser's imports) and a document well under a millisecond to hand
# over, so a run of small documents is not worth a pool, and a large one pays for a core.
POOL_BYTES = 32_768


@dataclass(frozen=True)
class FeedPlan:
    """A feed of the newsletter: the section its row is filed under, and for a feed that
    covers several sections, the router that files its entries."""

    url: str
    section: str
    router: Router | None = None


@dataclass(frozen=True)
class FeedOutcome:
    url: str
    section: str  # ROUTED for a feed whose entries are filed by category
    status: str  # "ok", "not-modified", "error"
    added: int
    updated: int
    entries: int
    warnings: tuple[str, ...]
    error: str | None  # the reason, without the feed's URL (that is ``url``)
    parsed: bool = False  # whether the document was parsed (never after a 304)
    sections: dict[str, int] = field(default_factory=dict)  # articles taken, per section
    truncated: int = 0  # entries left out: only the newest DIGEST_FETCH_MAX_ENTRIES are read


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

    @property
    def parses(self) -> int:
        return sum(1 for f in self.feeds if f.parsed)


def plan_feeds(newsletter: Newsletter) -> list[FeedPlan]:
    """Every feed of the newsletter, in its order: sections' feeds, then routers' feeds."""
    # A URL listed under two sections belongs to the last one, as sync_sections files it.
    plans = {url: FeedPlan(url, s.slug) for s in newsletter.sections for url in s.feeds}
    categorized = [(s.slug, s.categories) for s in newsletter.sections]
    first = next((slug for slug, categories in categorized if categories), None)
    for router in newsletter.routers:
        rules = Router.build(categorized, router.fallback)
        for url in router.feeds:
            plans[url] = FeedPlan(url, router.fallback or first or "", rules)
    return list(plans.values())


def feed_source(source: str) -> str:
    """``source`` as the newsletter definition spells its feeds: URLs as they are, paths
    absolute."""
    if re.match(r"^[a-z][a-z0-9+.-]*://", source, re.I):
        return source
    return str(Path(source).expanduser().resolve())


def register(store: ArticleStore, newsletter: Newsletter) -> list[FeedPlan]:
    """The newsletter's feeds, each with its row in the store."""
    store.sync_sections((s.slug, s.title, s.feeds) for s in newsletter.sections)
    plans = plan_feeds(newsletter)
    store.register_feeds((p.url, p.section) for p in plans if p.router is not None)
    return plans


def ingest(
    store: ArticleStore,
    newsletter: Newsletter,
    now: datetime,
    *,
    client: FeedClient | None = None,
    policy: FetchPolicy | None = None,
    concurrency: int = 8,
    on_feed: Callable[[FeedOutcome], None] | None = None,
    parse_processes: int | None = None,
    pool_bytes: int = POOL_BYTES,
) -> IngestReport:
    """Fetch every feed of the newsletter, several at once, and store what is new.

    ``parse_processes``: worker processes parsing the documents of ``pool_bytes`` and more
    (default: one per core; 0 or 1: every document is parsed in its fetching thread)."""
    policy = policy or FetchPolicy()
    plans = register(store, newsletter)
    known = {record.url: record for record in store.feeds()}
    filed = store.article_sections()
    http = client or new_client(policy=policy, contact=newsletter.website, connections=concurrency)
    pool = ThreadPoolExecutor(
        max_workers=max(1, min(concurrency, len(plans) or 1)), thread_name_prefix="digest-fetch"
    )
    if parse_processes is None:
        parse_processes = os.cpu_count() or 1
    parser = _Parser(parse_processes, pool_bytes)
    outcomes: list[FeedOutcome] = []
    try:
        futures = [
            pool.submit(
                _retrieve,
                plan.url,
                known.get(plan.url),
                http,
                policy,
                now,
                newsletter.summary_chars,
                parser,
            )
            for plan in plans
        ]
        for plan, future in zip(plans, futures, strict=True):
            outcome = _store(store, plan, future.result(), now, filed)
            outcomes.append(outcome)
            if on_feed is not None:
                on_feed(outcome)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        parser.close()
        if client is None:
            http.close()
    return IngestReport(tuple(outcomes))


class _Parser:
    """``parse`` for one run: a document of ``pool_bytes`` and more in a pool of ``processes``
    worker processes (started at the first such document: a run of small feeds, or of 304s,
    starts none), a smaller one in place. A pool that breaks (a worker killed) is not
    replaced: parsing goes on in place, and the run goes on."""

    def __init__(self, processes: int, pool_bytes: int):
        self._processes = processes
        self._pool_bytes = pool_bytes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # the fetching threads share the pool

    def __call__(self, content: bytes, **options: Any) -> ParsedFeed:
        pool = self._pool_for(len(content))
        if pool is not None:
            try:
                parsed = pool.submit(parse, content, **options)
            except (BrokenExecutor, RuntimeError):  # broken, or given up by another thread
                self._lose(pool)
            else:
                try:
                    return parsed.result()
                except BrokenExecutor:  # a worker died: every document it had is parsed here
                    self._lose(pool)
        return parse(content, **options)

    def _pool_for(self, size: int) -> ProcessPoolExecutor | None:
        if self._processes < 2 or size < self._pool_bytes:
            return None
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self._processes,
                    # spawn: a fork would copy this process's threads and connections.
                    mp_context=multiprocessing.get_context("spawn"),
                )
            return self._pool

    def _lose(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            self._processes = 0
            self._pool = None
        # A broken pool has failed its waiting documents already: each is parsed in place.
        pool.shutdown(wait=False)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class _Retrieved:
    fetched: FetchResult | None = None
    parsed: ParsedFeed | None = None
    error: str | None = None


def _retrieve(
    url: str,
    known: FeedRecord | None,
    client: FeedClient,
    policy: FetchPolicy,
    now: datetime,
    summary_chars: int,
    parse: Callable[..., ParsedFeed] = parse,
) -> _Retrieved:
    """Fetch and parse one feed (in a worker thread); never raises."""
    try:
        fetched = fetch(
            url,
            etag=known.etag if known else None,
            last_modified=known.last_modified if known else None,
            client=client,
            policy=policy,
        )
        if fetched.status == "not-modified":
            return _Retrieved(fetched)
        parsed = parse(
            fetched.content or b"",
            source=url,
            section="",
            now=now,
            summary_chars=summary_chars,
            content_type=fetched.content_type,
            max_entries=policy.max_entries,
        )
        return _Retrieved(fetched, parsed)
    except FeedError as exc:
        return _Retrieved(error=str(exc).removeprefix(f"{url}: "))
    except Exception as exc:  # a bug or a library's surprise: this feed fails, not the run
        return _Retrieved(error=f"unexpected {type(exc).__name__}: {one_line(str(exc))[:300]}")


def _store(
    store: ArticleStore, plan: FeedPlan, got: _Retrieved, now: datetime, filed: dict[str, str]
) -> FeedOutcome:
    label = ROUTED if plan.router is not None else plan.section
    if got.error is not None:
        store.record_feed(plan.url, status="error", now=now, error=got.error)
        return FeedOutcome(plan.url, label, "error", 0, 0, 0, (), got.error)
    fetched, parsed = got.fetched, got.parsed
    retried = fetched.notes if fetched else ()
    if parsed is None:
        store.record_feed(plan.url, status="not-modified", now=now)
        return FeedOutcome(plan.url, label, "not-modified", 0, 0, 0, retried, None)
    assert fetched is not None  # a feed is parsed only once it was fetched
    articles, unrouted = _file(parsed.articles, plan)
    articles, elsewhere = _first_section_wins(articles, filed)
    added, updated = store.save_articles(articles, now)
    # Validators are kept only once the articles are safely stored: a crash before this line
    # means a full fetch next time, never a lost article.
    store.record_feed(
        plan.url,
        status="ok",
        now=now,
        etag=fetched.etag,
        last_modified=fetched.last_modified,
        entries=len(parsed.articles),
        newest_entry_at=max(
            (a.published_at for a in parsed.articles if a.published_at), default=None
        ),
    )
    warnings = retried + parsed.warnings
    for count, what in (
        (unrouted, "matching no section's categories left out"),
        (elsewhere, "already filed under another section kept there"),
    ):
        if count:
            warnings += (f"{count} {'entry' if count == 1 else 'entries'} {what}",)
    return FeedOutcome(
        plan.url,
        label,
        "ok",
        added,
        updated,
        len(parsed.articles),
        warnings,
        None,
        parsed=True,
        sections=dict(Counter(a.section for a in articles)),
        truncated=parsed.truncated,
    )


def _file(articles: Collection[Article], plan: FeedPlan) -> tuple[list[Article], int]:
    """The articles with their section set (by category for a routed feed), and how many
    no section takes."""
    if plan.router is None:
        return [replace(a, section=plan.section) for a in articles], 0
    kept = [
        replace(a, section=section)
        for a in articles
        if (section := plan.router.section_for(a.categories))
    ]
    return kept, len(articles) - len(kept)


def _first_section_wins(
    articles: Iterable[Article], filed: dict[str, str]
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


# -- health -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedHealth:
    url: str
    section: str
    status: str | None  # None: never fetched
    last_fetched_at: datetime | None
    last_success_at: datetime | None
    entries: int | None
    failures: int
    failing_since: datetime | None
    error: str | None
    failing_days: float  # 0 when the feed is not failing
    flagged: bool  # failing for at least the threshold
    newest_entry_at: datetime | None = None  # the newest entry's own date, last fetch
    stale: bool = False  # its newest entry is older than the stale threshold


def feed_health(
    store: ArticleStore,
    newsletter: Newsletter,
    now: datetime,
    failing_days: int,
    sections: Collection[str] | None = None,
    stale_days: int = 0,
) -> list[FeedHealth]:
    """The health of each feed of the newsletter (of ``sections`` only, when given); a feed
    whose newest entry is older than ``stale_days`` days (0: never) is marked stale."""
    plans = register(store, newsletter)
    records = {r.url: r for r in store.feeds()}
    rows = []
    for plan in plans:
        if sections is not None and not _covers(plan, sections):
            continue
        r = records.get(plan.url)
        since = r.failing_since if r else None
        days = (now - since).total_seconds() / 86400 if since else 0.0
        rows.append(
            FeedHealth(
                url=plan.url,
                section=ROUTED if plan.router else plan.section,
                status=r.last_status if r else None,
                last_fetched_at=r.last_fetched_at if r else None,
                last_success_at=r.last_success_at if r else None,
                entries=r.entries if r else None,
                failures=r.failures if r else 0,
                failing_since=since,
                error=r.last_error if r else None,
                failing_days=days,
                flagged=since is not None and now - since >= timedelta(days=failing_days),
                newest_entry_at=r.newest_entry_at if r else None,
                stale=is_stale_feed(r.newest_entry_at if r else None, now, stale_days),
            )
        )
    return rows


def is_stale_feed(newest: datetime | None, now: datetime, stale_days: int) -> bool:
    """Whether a feed whose newest entry is dated ``newest`` looks abandoned."""
    return bool(stale_days) and newest is not None and now - newest > timedelta(days=stale_days)


def failing_feeds(
    store: ArticleStore,
    newsletter: Newsletter,
    now: datetime,
    failing_days: int,
    sections: Collection[str] | None = None,
) -> list[str]:
    """One line for each feed failing for ``failing_days`` days or more."""
    return [
        f"feed {h.url} ({h.section}) failing for {h.failing_days:.0f} days "
        f"({h.failures} fetches in a row): {h.error}"
        for h in feed_health(store, newsletter, now, failing_days, sections)
        if h.flagged
    ]


def _covers(plan: FeedPlan, sections: Collection[str]) -> bool:
    if plan.router is None:
        return plan.section in sections
    return plan.router.fallback in sections or any(
        slug in sections for slug, _ in plan.router.rules
    )


# -- JSON lines import ------------------------------------------------------------------------


def import_articles(
    store: ArticleStore, path: Path, now: datetime, *, sections: Collection[str]
) -> tuple[int, int, list[tuple[int, str]]]:
    """Store the good rows of a JSON-lines file in one transaction.

    Returns (added, updated, rejects), rejects being (line number, reason). The sections must
    already be in the store (``ArticleStore.sync_sections``).
    """
    filed = store.article_sections()
    first_line: dict[str, int] = {}
    good: list[Article] = []
    rejects: list[tuple[int, str]] = []
    for number, item in jsonl_rows(path, sections=sections, now=now):
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


__all__ = ["failing_feeds", "feed_health", "import_articles", "ingest", "read_jsonl"]
