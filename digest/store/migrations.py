"""Schema migrations: a list of small functions applied in order, each in its own transaction.

A database records the versions it has in ``schema_migrations``; ``migrate()`` applies the
missing ones. ``schema.py`` always describes the newest shape; each migration brings an older
database towards it and must be idempotent, because on a new database the first migration
already creates every table in its newest shape: create new tables with ``create_tables``
(checkfirst) and new columns with ``add_column`` (skipped when present). Add a function at
the end for every schema change; never edit an old one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Connection, Engine, Table, inspect, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateIndex, DefaultClause

from digest.store import schema


def create_tables(conn: Connection, *tables: Table) -> None:
    """Create tables (and their indexes) that do not exist yet."""
    schema.metadata.create_all(conn, tables=list(tables), checkfirst=True)


def add_column(conn: Connection, table: Table, name: str) -> None:
    """Add ``table.c[name]`` as declared in schema.py, unless the database has it already."""
    if name in {c["name"] for c in inspect(conn).get_columns(table.name)}:
        return
    column: Column[Any] = table.c[name]
    ddl_type = column.type.compile(dialect=conn.dialect)
    default = ""
    if isinstance(column.server_default, DefaultClause):
        default = f" DEFAULT {column.server_default.arg}"
    conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {name} {ddl_type}{default}")


def add_index(conn: Connection, table: Table, index_name: str) -> None:
    """Create one of ``table``'s declared indexes unless it exists."""
    if index_name in {i["name"] for i in inspect(conn).get_indexes(table.name)}:
        return
    index = next(i for i in table.indexes if i.name == index_name)
    conn.execute(CreateIndex(index))


def _m001_initial(conn: Connection) -> None:
    tables = [
        schema.sections,
        schema.feeds,
        schema.articles,
        schema.lists,
        schema.subscribers,
        schema.subscriptions,
        schema.editions,
        schema.edition_articles,
        schema.deliveries,
        schema.suppressions,
    ]
    create_tables(conn, *tables)


def _m003_subscribers_web(conn: Connection) -> None:
    for name in ("consent_ip", "soft_bounces", "soft_bounce_at"):
        add_column(conn, schema.subscribers, name)
    for name in ("state", "paused", "updated_at"):
        add_column(conn, schema.subscriptions, name)
    create_tables(conn, schema.confirmations, schema.bounces, schema.counters)


def _m002_sender(conn: Connection) -> None:
    # The run that claimed a row (so a run never re-claims its own deferred rows) and the
    # relay that took it (hourly rate limits count across runs).
    add_column(conn, schema.deliveries, "run_id")
    add_column(conn, schema.deliveries, "relay")
    add_index(conn, schema.deliveries, "ix_deliveries_relay_sent")
    add_index(conn, schema.deliveries, "ix_deliveries_subscriber")


def _m004_feed_health(conn: Connection) -> None:
    add_column(conn, schema.feeds, "failures")
    add_column(conn, schema.feeds, "failing_since")


def _m005_send_workers(conn: Connection) -> None:
    create_tables(conn, schema.send_workers)
    add_index(conn, schema.deliveries, "ix_deliveries_edition_state_id")
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_deliveries_edition_state")


def _m006_address_keys(conn: Connection) -> None:
    """Addresses in their normal form (IDNA domains) under keys that keep ``ß`` apart from
    ``ss``; a pending sign-up gets the pending subscription its request names."""
    from sqlalchemy import exists, update

    from digest.audience.addresses import email_key, normalize_email
    from digest.errors import SubscriberError
    from digest.store._sql import address_hash

    s, sup, sub, c = (
        schema.subscribers,
        schema.suppressions,
        schema.subscriptions,
        schema.confirmations,
    )
    # An ASCII address's key is the same either way (lower case): only the others change.
    rows = [
        r for r in conn.execute(select(s.c.id, s.c.email, s.c.email_key)) if not r.email.isascii()
    ]
    for r in rows:
        try:
            email = normalize_email(r.email)
        except SubscriberError:
            email = r.email.strip()
        key = email_key(email)
        if key != r.email_key and conn.scalar(select(s.c.id).where(s.c.email_key == key)):
            continue  # the same mailbox stored twice under the old keys: left as it was
        conn.execute(update(s).where(s.c.id == r.id).values(email=email, email_key=key))
    for entry in conn.execute(select(sup.c.id, sup.c.email).where(sup.c.email.is_not(None))).all():
        if entry.email.isascii():
            continue
        try:
            new = address_hash(normalize_email(entry.email))
        except SubscriberError:
            continue
        if not conn.scalar(select(sup.c.id).where(sup.c.address_hash == new)):
            conn.execute(update(sup).where(sup.c.id == entry.id).values(address_hash=new))
    # Sign-ups stored before a request recorded its list as a pending subscription.
    wanting = (
        select(c.c.subscriber_id, c.c.list_id, c.c.sections, c.c.requested_at)
        .join(s, s.c.id == c.c.subscriber_id)
        .where(s.c.status == "pending", ~exists().where(sub.c.subscriber_id == c.c.subscriber_id))
        .order_by(c.c.requested_at)
    )
    latest = {r.subscriber_id: r for r in conn.execute(wanting)}
    for request in latest.values():
        conn.execute(
            sub.insert().values(
                subscriber_id=request.subscriber_id,
                list_id=request.list_id,
                state="pending",
                paused=0,
                sections=request.sections,
                created_at=request.requested_at,
                updated_at=request.requested_at,
            )
        )


def _m007_signups(conn: Connection) -> None:
    create_tables(conn, schema.signups)


def _m008_drafts(conn: Connection) -> None:
    """Editions hold the editor's curation and the time they were frozen; an edition stored
    before drafts was frozen when it was created."""
    from sqlalchemy import update

    add_column(conn, schema.editions, "frozen_at")
    add_column(conn, schema.editions, "curation")
    e = schema.editions
    conn.execute(
        update(e)
        .where(e.c.frozen_at.is_(None), e.c.status != "draft")
        .values(frozen_at=e.c.created_at)
    )


def _m009_frequencies(conn: Connection) -> None:
    """A reader's frequency per subscription (carried by a sign-up to its confirmation), and
    the articles each ledger row leaves out because the reader was queued for them before."""
    add_column(conn, schema.subscriptions, "frequency")
    add_column(conn, schema.confirmations, "frequency")
    add_column(conn, schema.signups, "frequency")
    create_tables(conn, schema.delivery_omissions)


def _m010_local_delivery(conn: Connection) -> None:
    """A subscriber's own time zone, and the moment each ledger row becomes due."""
    add_column(conn, schema.subscribers, "timezone")
    add_column(conn, schema.deliveries, "due_at")


def _m011_image_size(conn: Connection) -> None:
    """An article keeps its picture's size, when its feed gives one."""
    add_column(conn, schema.articles, "image_width")
    add_column(conn, schema.articles, "image_height")


def _m013_also_reports(conn: Connection) -> None:
    """An edition keeps the other reports of each story it shows (its "Also:" links)."""
    add_column(conn, schema.edition_articles, "also_for")


def _m014_feed_freshness(conn: Connection) -> None:
    add_column(conn, schema.feeds, "newest_entry_at")


MIGRATIONS = [
    (1, "initial schema", _m001_initial),
    (2, "sender: run and relay of each delivery", _m002_sender),
    # Numbers reserved: 2 sender, 3 subscribers and web, 4 feeds. Append, never reorder.
    (3, "subscriber states, consent address, confirmations, bounces", _m003_subscribers_web),
    (4, "feed health: failures in a row and since when", _m004_feed_health),
    (5, "send workers and their leases; claims in id order on every engine", _m005_send_workers),
    (
        6,
        "addresses in normal form under case-preserving keys; pending sign-ups' lists",
        _m006_address_keys,
    ),
    (7, "web sign-ups queued for their confirmation mail", _m007_signups),
    (8, "editions: drafts with the editor's curation, and when each was frozen", _m008_drafts),
    (
        9,
        "subscriptions: each reader's frequency; ledger rows: the articles left out",
        _m009_frequencies,
    ),
    (10, "local delivery: subscribers' time zones, ledger rows' due moments", _m010_local_delivery),
    (11, "articles: the size of each article's picture", _m011_image_size),
    (13, "editions: the other reports of each story, shown as its also links", _m013_also_reports),
    (14, "feeds: the date of the newest entry at the last fetch", _m014_feed_freshness),
]


# pg_advisory_lock key held while migrating: machines starting at once migrate one at a time.
_MIGRATION_LOCK = 0x6469676573740001


def migrate(engine: Engine) -> list[int]:
    """Bring the database to the newest schema; return the versions applied now."""
    if _is_current(engine):  # every command opens the store: its usual case is one query
        return []
    if engine.dialect.name != "postgresql":
        return _migrate(engine)
    with engine.connect() as lock:
        lock.exec_driver_sql("SELECT pg_advisory_lock(%(k)s)", {"k": _MIGRATION_LOCK})
        lock.commit()
        try:
            return _migrate(engine)
        finally:
            lock.exec_driver_sql("SELECT pg_advisory_unlock(%(k)s)", {"k": _MIGRATION_LOCK})
            lock.commit()


def _is_current(engine: Engine) -> bool:
    """Whether every migration is recorded as applied (a database is never less current
    than that once it is, so no lock is needed to see it)."""
    with engine.connect() as conn:  # a database that cannot be reached: the caller says so
        try:
            done = set(conn.scalars(select(schema.schema_migrations.c.version)))
        except DBAPIError:  # no schema_migrations table yet
            return False
    return all(version in done for version, _name, _step in MIGRATIONS)


def _migrate(engine: Engine) -> list[int]:
    schema.metadata.create_all(engine, tables=[schema.schema_migrations])
    applied: list[int] = []
    with engine.connect() as conn:
        done = set(conn.scalars(select(schema.schema_migrations.c.version)))
    for version, name, step in MIGRATIONS:
        if version in done:
            continue
        with engine.begin() as conn:
            step(conn)
            conn.execute(
                schema.schema_migrations.insert().values(
                    version=version, name=name, applied_at=datetime.now(UTC)
                )
            )
        applied.append(version)
    return applied


def current_version(engine: Engine) -> int:
    if not inspect(engine).has_table("schema_migrations"):
        return 0
    with engine.connect() as conn:
        return max(conn.scalars(select(schema.schema_migrations.c.version)), default=0)
