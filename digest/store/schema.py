"""The tables, as SQLAlchemy Core objects. Migrations create them; queries use them."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware one")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


metadata = MetaData()

schema_migrations = Table(
    "schema_migrations", metadata,
    Column("version", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

sections = Table(
    "sections", metadata,
    Column("slug", String(64), primary_key=True),
    Column("title", String(200), nullable=False),
)

feeds = Table(
    "feeds", metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False, unique=True),
    Column("section", String(64), ForeignKey("sections.slug"), nullable=False),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("last_status", String(32)),
    Column("last_error", Text),
    Column("last_fetched_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("entries", Integer),
)

articles = Table(
    "articles", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", Text, nullable=False, unique=True),
    Column("section", String(64), ForeignKey("sections.slug"), nullable=False),
    Column("title", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("summary", Text, nullable=False, default=""),
    Column("byline", Text),
    Column("dateline", Text),
    Column("image", Text),
    Column("published_at", UTCDateTime),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_articles_section_seen", "section", "first_seen_at"),
)

lists = Table(
    "lists", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("title", Text, nullable=False),
)

subscribers = Table(
    "subscribers", metadata,
    Column("id", Integer, primary_key=True),
    Column("email", Text, nullable=False),
    Column("email_key", Text, nullable=False, unique=True),  # case-folded: unique regardless of case
    Column("name", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("consent_source", Text),
    Column("consent_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

subscriptions = Table(
    "subscriptions", metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"),
           primary_key=True),
    Column("list_id", Integer, ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True),
    Column("sections", Text),  # space-separated slugs; NULL means every section
    Column("created_at", UTCDateTime, nullable=False),
)

editions = Table(
    "editions", metadata,
    Column("id", Integer, primary_key=True),
    Column("list_id", Integer, ForeignKey("lists.id"), nullable=False),
    Column("key", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # open, complete
    Column("created_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime),
    UniqueConstraint("list_id", "key", name="uq_editions_list_key"),
)

edition_articles = Table(
    "edition_articles", metadata,
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"),
           primary_key=True),
    Column("article_id", Integer, ForeignKey("articles.id"), primary_key=True),
    Column("section", String(64), nullable=False),
    Column("section_title", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Index("ix_edition_articles_article", "article_id"),
)

deliveries = Table(
    "deliveries", metadata,
    Column("id", Integer, primary_key=True),
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"), nullable=False),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"),
           nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_code", Integer),
    Column("last_reply", Text),
    Column("message_id", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    UniqueConstraint("edition_id", "subscriber_id", name="uq_deliveries_edition_subscriber"),
    Index("ix_deliveries_edition_state", "edition_id", "state"),
)

suppressions = Table(
    "suppressions", metadata,
    Column("id", Integer, primary_key=True),
    Column("address_hash", String(64), nullable=False, unique=True),  # sha256 of the folded address
    Column("email", Text),  # NULL once erased
    Column("reason", String(32), nullable=False),  # hard-bounce, complaint, erased, manual
    Column("created_at", UTCDateTime, nullable=False),
)
