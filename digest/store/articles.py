"""Queries on sections, feeds and articles."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, select, update

from digest.models import Article
from digest.store import schema
from digest.store._sql import insert_ignore

_CONTENT = ("section", "title", "url", "summary", "byline", "dateline", "image", "published_at")


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


def article_from_row(row) -> Article:
    return Article(
        id=row.id, key=row.key, section=row.section, title=row.title, url=row.url,
        summary=row.summary, byline=row.byline, dateline=row.dateline, image=row.image,
        published_at=row.published_at, first_seen_at=row.first_seen_at)


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
                conn.execute(insert_ignore(self.dialect, schema.sections).values(
                    slug=slug, title=title))
                conn.execute(update(schema.sections).where(schema.sections.c.slug == slug)
                             .values(title=title))
                for url in feed_urls:
                    conn.execute(insert_ignore(self.dialect, schema.feeds, ["url"]).values(
                        url=url, section=slug))
                    conn.execute(update(schema.feeds).where(schema.feeds.c.url == url)
                                 .values(section=slug))

    def feed(self, url: str) -> FeedRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.feeds).where(schema.feeds.c.url == url)).first()
        return None if row is None else FeedRecord(**{k: getattr(row, k) for k in
                                                      FeedRecord.__dataclass_fields__})

    def feeds(self) -> list[FeedRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(schema.feeds).order_by(schema.feeds.c.section,
                                                              schema.feeds.c.url)).all()
        return [FeedRecord(**{k: getattr(r, k) for k in FeedRecord.__dataclass_fields__})
                for r in rows]

    def record_feed(self, url: str, *, status: str, now: datetime, error: str | None = None,
                    etag: str | None = None, last_modified: str | None = None,
                    entries: int | None = None) -> None:
        values: dict = {"last_status": status, "last_error": error, "last_fetched_at": now}
        if error is None:
            values.update(last_success_at=now)
            if status != "not-modified":
                values.update(etag=etag, last_modified=last_modified, entries=entries)
        with self.engine.begin() as conn:
            conn.execute(update(schema.feeds).where(schema.feeds.c.url == url).values(**values))

    def save_articles(self, items: Iterable[Article], now: datetime) -> tuple[int, int]:
        """Insert new articles and update changed ones, in one transaction.

        Returns (added, updated). An article already stored keeps its first-seen time, so a
        correction in the feed never makes it new again.
        """
        added = updated = 0
        with self.engine.begin() as conn:
            for item in items:
                existing = conn.execute(select(schema.articles).where(
                    schema.articles.c.key == item.key)).first()
                content = {k: getattr(item, k) for k in _CONTENT}
                if existing is None:
                    conn.execute(schema.articles.insert().values(
                        key=item.key, first_seen_at=item.first_seen_at or now, updated_at=now,
                        **content))
                    added += 1
                elif any(getattr(existing, k) != v for k, v in content.items()):
                    conn.execute(update(schema.articles).where(
                        schema.articles.c.id == existing.id).values(updated_at=now, **content))
                    updated += 1
        return added, updated

    def articles(self, *, section: str | None = None, since: datetime | None = None,
                 sections: Iterable[str] | None = None, limit: int | None = None
                 ) -> list[Article]:
        """Stored articles, newest first-seen first."""
        a = schema.articles
        query = select(a).order_by(a.c.first_seen_at.desc(), a.c.published_at.desc(),
                                   a.c.id.desc())
        conditions = []
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
