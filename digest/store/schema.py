"""The tables, as SQLAlchemy Core objects. Migrations create them; queries use them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # PostgreSQL answers in the session's time zone: bring it back to UTC.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

sections = Table(
    "sections",
    metadata,
    Column("slug", String(64), primary_key=True),
    Column("title", String(200), nullable=False),
)

feeds = Table(
    "feeds",
    metadata,
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
    # Health: failed fetches in a row, and when the current run of failures began.
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("failing_since", UTCDateTime),
    Column("newest_entry_at", UTCDateTime),  # the newest entry's own date at the last fetch
)

articles = Table(
    "articles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", Text, nullable=False, unique=True),
    Column("section", String(64), ForeignKey("sections.slug"), nullable=False),
    Column("title", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("summary", Text, nullable=False, default=""),
    Column("byline", Text),
    Column("dateline", Text),
    Column("image", Text),
    # The picture's size in pixels when the feed gives it (the email keeps its ratio).
    Column("image_width", Integer),
    Column("image_height", Integer),
    Column("published_at", UTCDateTime),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_articles_section_seen", "section", "first_seen_at"),
)

lists = Table(
    "lists",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("title", Text, nullable=False),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", Text, nullable=False),
    # case-folded: unique regardless of case
    Column("email_key", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("consent_source", Text),
    Column("consent_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("consent_ip", String(64)),  # where a web sign-up was confirmed from
    Column("soft_bounces", Float, nullable=False, server_default=text("0")),  # decaying score
    Column("soft_bounce_at", UTCDateTime),
    # An IANA zone name the person chose; NULL: the list's. Lists that deliver locally send
    # at their send_at on this zone's clock.
    Column("timezone", String(64)),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column(
        "subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("list_id", Integer, ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True),
    Column("sections", Text),  # space-separated slugs; NULL means every section
    Column("created_at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False, server_default=text("'active'")),  # or unsubscribed
    Column("paused", Integer, nullable=False, server_default=text("0")),
    Column("updated_at", UTCDateTime),
    # daily, weekly or monthly: the series of the list's editions the reader gets; NULL: the
    # list's own schedule.
    Column("frequency", String(16)),
)

# Double opt-in requests: the confirm link's token names a row here, so it works once.
confirmations = Table(
    "confirmations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False
    ),
    Column("list_id", Integer, ForeignKey("lists.id", ondelete="CASCADE"), nullable=False),
    Column("sections", Text),
    Column("frequency", String(16)),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("requested_ip", String(64)),
    Column("used_at", UTCDateTime),
    Index("ix_confirmations_subscriber", "subscriber_id"),
)

# Web sign-ups waiting for their confirmation mail. The form stores a row and answers at
# once; the server mails it outside the request, so neither the address's state nor the
# relay's health shows in the answer. Once handled, the address and name are cleared and the
# row keeps only what the limits count: the client and a hash of the folded mailbox.
signups = Table(
    "signups",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("list_name", String(64), nullable=False),
    Column("email", Text, nullable=False),  # "" once handled
    Column("name", Text, nullable=False),
    Column("sections", Text),
    Column("frequency", String(16)),
    Column("client", String(64)),
    Column("mailbox", String(64), nullable=False),  # sha256 of the plus-tag-folded mailbox
    Column("requested_at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False),  # queued, sending, sent, dropped, failed
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("claimed_at", UTCDateTime),
    Index("ix_signups_client", "client", "requested_at"),
    Index("ix_signups_mailbox", "mailbox", "state", "requested_at"),
    Index("ix_signups_state", "state", "id"),
)

# Processed bounces, complaints and mailed unsubscribes; ``key`` makes processing idempotent.
bounces = Table(
    "bounces",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE")),
    Column("edition_id", Integer),
    Column("kind", String(16), nullable=False),  # hard, soft, complaint, unsubscribe, ...
    Column("status", String(16)),  # the DSN status code, e.g. 5.1.1
    Column("diagnostic", Text),
    Column("received_at", UTCDateTime, nullable=False),
)

# Named high-water marks; "subscriber_id" keeps ids of deleted subscribers from being reused,
# so a link mailed to an erased subscriber can never act for a newer one.
counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Integer, nullable=False),
)

editions = Table(
    "editions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("list_id", Integer, ForeignKey("lists.id"), nullable=False),
    Column("key", String(32), nullable=False),
    # draft (curation only), sending (frozen, ledger filled), complete; open: see EditionState
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime),
    Column("frozen_at", UTCDateTime),  # when its articles were fixed (the next window's start)
    Column("curation", Text),  # the editor's choices, JSON (see digest.store.editions)
    UniqueConstraint("list_id", "key", name="uq_editions_list_key"),
)

edition_articles = Table(
    "edition_articles",
    metadata,
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True),
    Column("article_id", Integer, ForeignKey("articles.id"), primary_key=True),
    Column("section", String(64), nullable=False),
    Column("section_title", Text, nullable=False),
    Column("position", Integer, nullable=False),
    # Another report of the story of this article (its id), shown as an "Also:" link after it.
    Column("also_for", Integer),
    Index("ix_edition_articles_article", "article_id"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"), nullable=False),
    Column(
        "subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False
    ),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_code", Integer),
    Column("last_reply", Text),
    Column("message_id", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("run_id", String(32)),  # the send run that last claimed the row
    Column("relay", String(200)),  # host:port of the relay that last took the row
    # When the row may be claimed (a list delivering in each reader's zone); NULL: at once.
    Column("due_at", UTCDateTime),
    UniqueConstraint("edition_id", "subscriber_id", name="uq_deliveries_edition_subscriber"),
    # Claims read one state of one edition in id order and stop at the batch: with the id in
    # the index (SQLite has it there implicitly) no claim sorts the rows that remain.
    Index("ix_deliveries_edition_state_id", "edition_id", "state", "id"),
    Index("ix_deliveries_relay_sent", "relay", "sent_at"),
    Index("ix_deliveries_subscriber", "subscriber_id"),
)

# The articles of an edition a reader is not sent because another edition of the list they
# were queued for holds them (a reader who changed frequency): written with the ledger rows,
# in the same transaction, so the ledger says exactly what each message held.
delivery_omissions = Table(
    "delivery_omissions",
    metadata,
    Column(
        "delivery_id", Integer, ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("article_id", Integer, ForeignKey("articles.id"), primary_key=True),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("address_hash", String(64), nullable=False, unique=True),  # sha256 of the folded address
    Column("email", Text),  # NULL once erased
    Column("reason", String(32), nullable=False),  # hard-bounce, complaint, erased, manual
    Column("created_at", UTCDateTime, nullable=False),
)

# The send workers running now, on any machine sharing the database: one row per `digest send`
# process. A worker's claims are leases kept alive by its heartbeat: each beat moves
# ``expires_at`` a lease ahead, by the database server's clock (machines' clocks may differ).
# Rows claimed by a worker whose lease has expired are taken over by the others.
send_workers = Table(
    "send_workers",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("relays", Text, nullable=False),  # space-separated labels of the relays it uses
    Column("started_at", UTCDateTime, nullable=False),
    Column("expires_at", Float, nullable=False),  # seconds since the epoch, database clock
)
