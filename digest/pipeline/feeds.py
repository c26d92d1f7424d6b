"""Ingest: fetch the feeds, report their health, check one feed, import article files."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from digest import ingest
from digest.config import ListConfig, Settings, load_newsletter
from digest.feeds import SUMMARY_CHARS, FetchPolicy
from digest.feeds.check import FeedCheck
from digest.feeds.check import check_feed as feeds_check
from digest.models import Article
from digest.pipeline.context import Context


def fetch(
    ctx: Context,
    now: datetime,
    on_feed: Callable[[ingest.FeedOutcome], None] | None = None,
) -> ingest.IngestReport:
    return ingest.ingest(
        ctx.store,
        ctx.newsletter,
        now,
        on_feed=on_feed,
        policy=FetchPolicy.from_settings(ctx.settings),
        concurrency=ctx.settings.fetch_concurrency,
    )


def feed_health(ctx: Context, now: datetime) -> list[ingest.FeedHealth]:
    return ingest.feed_health(
        ctx.store,
        ctx.newsletter,
        now,
        ctx.settings.feed_failing_days,
        stale_days=ctx.settings.feed_stale_days,
    )


def failing_feeds(ctx: Context, lst: ListConfig, now: datetime) -> list[str]:
    """The feeds of the list's sections failing for ``feed_failing_days`` days or more."""
    return ingest.failing_feeds(
        ctx.store,
        ctx.newsletter,
        now,
        ctx.settings.feed_failing_days,
        sections=[s.slug for s in ctx.newsletter.sections_of(lst)],
    )


def check_feed(settings: Settings, source: str, now: datetime) -> FeedCheck:
    """Fetch and parse one feed, store nothing; the newsletter definition, when there is one,
    gives the summary length, the User-Agent's contact and the feed's section or router."""
    now = settings.now or now  # DIGEST_NOW: this command opens no context to set the clock
    newsletter = load_newsletter(settings.config) if settings.config.exists() else None
    plan = None
    if newsletter is not None:
        wanted = ingest.feed_source(source)
        plan = next((p for p in ingest.plan_feeds(newsletter) if p.url == wanted), None)
    return feeds_check(
        source,
        now=now,
        policy=FetchPolicy.from_settings(settings),
        contact=newsletter.website if newsletter else None,
        summary_chars=newsletter.summary_chars if newsletter else SUMMARY_CHARS,
        section=plan.section if plan and not plan.router else None,
        router=plan.router if plan else None,
        stale_days=settings.feed_stale_days,
    )


def import_articles(
    ctx: Context, path: Path, now: datetime
) -> tuple[int, int, list[tuple[int, str]]]:
    return ingest.import_articles(
        ctx.store, path, now, sections=[s.slug for s in ctx.newsletter.sections]
    )


def list_articles(ctx: Context, *, section: str | None, limit: int) -> list[Article]:
    """Stored articles, newest first (of one section when ``section`` is given)."""
    return ctx.store.articles(section=section, limit=limit)
