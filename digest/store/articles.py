"""Queries on sections, feeds (with their health) and articles."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, and_, func, literal, select, update

from digest.models import Article
from digest.store import schema
from digest.store._sql import insert_ignore

_CONTENT = (
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
)
# Keys looked up per query: well under SQLite's and PostgreSQL's bound-parameter limits.
_LOOKUP_BATCH = 500


@dataclass(frozen=True)
class FeedRecord:
    url: str
    section: str
    etag: str | None
    last_modified: str | None
    last_status: str | None
    last_error: str | None
    last_fetched_at: datetime | None
    last_success_at: datetime | None
    entries: int | None
    failures: int = 0  # failed fetches in a row
    failing_since: datetime | None = None  # when the current run of failures began
    newest_entry_at: datetime | None = None  # the newest entry's own date at the last fetch


def article_from_row(row: Row[Any]) -> Article:
    return Article(
        id=row.id,
        key=row.key,
        section=row.section,
        title=row.title,
        url=row.url,
        summary=row.summary,
        byline=row.byline,
        dateline=row.dateline,
        image=row.image,
        image_width=row.image_width,
        image_height=row.image_height,
        published_at=row.published_at,
        first_seen_at=row.first_seen_at,
    )


def _feed_record(row: Row[Any]) -> FeedRecord:
    return FeedRecord(**{k: getattr(row, k) for k in FeedRecord.__dataclass_fields__})


class ArticleQueries:
    engine: Engine
    dialect: str

    def sync_sections(self, sections: Iterable[tuple[str, str, Sequence[str]]]) -> None:
        """Make the sections and feeds tables match the newsletter definition.

        ``sections`` holds (slug, title, feed URLs). Feeds are re-pointed to their section;
        nothing is deleted, so articles of a section removed from the definition stay stored.
        """
        with self.engine.begin() as conn:
            for slug, title, feed_urls in sections:
                conn.execute(
                    insert_ignore(self.dialect, schema.sections).values(slug=slug, title=title)
                )
                conn.execute(
                    update(schema.sections)
                    .where(schema.sections.c.slug == slug)
                    .values(title=title)
                )
                for url in feed_urls:
                    conn.execute(
                        insert_ignore(self.dialect, schema.feeds, ["url"]).values(
                            url=url, section=slug
                        )
                    )
                    conn.execute(
                        update(schema.feeds).where(schema.feeds.c.url == url).values(section=slug)
                    )

    def register_feeds(self, feeds: Iterable[tuple[str, str]]) -> None:
        """Make sure each (feed URL, section) has its row; a known feed is re-pointed."""
        with self.engine.begin() as conn:
            for url, slug in feeds:
                conn.execute(
                    insert_ignore(self.dialect, schema.feeds, ["url"]).values(url=url, section=slug)
                )
                conn.execute(
                    update(schema.feeds).where(schema.feeds.c.url == url).values(section=slug)
                )

    def feed(self, url: str) -> FeedRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.feeds).where(schema.feeds.c.url == url)).first()
        return None if row is None else _feed_record(row)

    def feeds(self) -> list[FeedRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(schema.feeds).order_by(schema.feeds.c.section, schema.feeds.c.url)
            ).all()
        return [_feed_record(r) for r in rows]

    def record_feed(
        self,
        url: str,
        *,
        status: str,
        now: datetime,
        error: str | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        entries: int | None = None,
        newest_entry_at: datetime | None = None,
    ) -> None:
        """Record one fetch: a success clears the failure count, a failure adds to it."""
        f = schema.feeds
        values: dict = {"last_status": status, "last_error": error, "last_fetched_at": now}
        if error is None:
            values.update(last_success_at=now, failures=0, failing_since=None)
            if status != "not-modified":
                values.update(
                    etag=etag,
                    last_modified=last_modified,
                    entries=entries,
                    newest_entry_at=newest_entry_at,
                )
        else:
            values.update(
                failures=f.c.failures + 1,
                failing_since=func.coalesce(f.c.failing_since, literal(now, schema.UTCDateTime())),
            )
        with self.engine.begin() as conn:
            conn.execute(update(f).where(f.c.url == url).values(**values))

    def save_articles(self, items: Iterable[Article], now: datetime) -> tuple[int, int]:
        """Insert new articles and update changed ones, in one transaction.

        Returns (added, updated). An article already stored keeps its first-seen time, so a
        correction in the feed never makes it new again. The stored rows are looked up in
        batches, not one query per article.
        """
        items = list(items)
        added = updated = 0
        a = schema.articles
        with self.engine.begin() as conn:
            stored = {}
            keys = [item.key for item in items]
            for start in range(0, len(keys), _LOOKUP_BATCH):
                batch = keys[start : start + _LOOKUP_BATCH]
                for row in conn.execute(
                    select(a.c.id, a.c.key, *(a.c[k] for k in _CONTENT)).where(a.c.key.in_(batch))
                ):
                    stored[row.key] = row
            new: list[dict[str, Any]] = []
            for item in items:
                existing = stored.get(item.key)
                content = {k: getattr(item, k) for k in _CONTENT}
                if existing is None:
                    new.append(
                        {
                            "key": item.key,
                            "first_seen_at": item.first_seen_at or now,
                            "updated_at": now,
                            **content,
                        }
                    )
                elif any(getattr(existing, k) != v for k, v in content.items()):
                    conn.execute(
                        update(a).where(a.c.id == existing.id).values(updated_at=now, **content)
                    )
                    updated += 1
            if new:  # one executemany: a row at a time cost 7 times the CPU (feed corpus)
                conn.execute(a.insert(), new)
            added = len(new)
        return added, updated

    def article_sections(self) -> dict[str, str]:
        """Every stored article's key with its section."""
        a = schema.articles
        with self.engine.connect() as conn:
            return {row.key: row.section for row in conn.execute(select(a.c.key, a.c.section))}

    def articles(
        self,
        *,
        section: str | None = None,
        since: datetime | None = None,
        sections: Iterable[str] | None = None,
        limit: int | None = None,
        ids: Iterable[int] | None = None,
    ) -> list[Article]:
        """Stored articles, newest first-seen first."""
        a = schema.articles
        query = select(a).order_by(a.c.first_seen_at.desc(), a.c.published_at.desc(), a.c.id.desc())
        conditions: list[ColumnElement[bool]] = []
        if ids is not None:
            conditions.append(a.c.id.in_(list(ids)))
        if section is not None:
            conditions.append(a.c.section == section)
        if sections is not None:
            conditions.append(a.c.section.in_(list(sections)))
        if since is not None:
            conditions.append(a.c.first_seen_at >= since)
        if conditions:
            query = query.where(and_(*conditions))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [article_from_row(r) for r in conn.execute(query)]
