"""The store: the only part of digest that speaks SQL.

``Store`` wraps a SQLAlchemy engine (SQLite by default, PostgreSQL for scale-out) and offers
the queries the other stages need, grouped by table family in the mixins below. Every write
that must be all-or-nothing runs in one transaction. A stage that needs only part of it takes
a protocol of ``digest.store.protocols`` (the send engine a ``SendStore``, ingest an
``ArticleStore``), which ``Store`` implements.

The same tables, queries and migrations serve both engines; PostgreSQL goes through psycopg 3
(``postgresql://`` URLs are read as ``postgresql+psycopg://``). What differs is kept here:
SQLite's pragmas, PostgreSQL's connect timeout, and ``list_lock``, a server-side lock that
several machines sharing one PostgreSQL database can take.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from digest.errors import StoreError
from digest.files import create_private, private_dir
from digest.store._sql import key_hash
from digest.store.archive import ArchiveQueries
from digest.store.articles import ArticleQueries
from digest.store.edge import EdgeQueries
from digest.store.editions import EditionQueries
from digest.store.ledger import LedgerQueries
from digest.store.migrations import migrate
from digest.store.sections import SectionQueries
from digest.store.subscribers import SubscriberQueries
from digest.store.workers import WorkerQueries

__all__ = ["Store", "open_store"]


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()
    # What PostgreSQL computes with sha256(): the ledger is filled in one INSERT ... SELECT.
    dbapi_conn.create_function("digest_address_hash", 1, key_hash, deterministic=True)


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"DIGEST_DATABASE_URL is not a database URL: {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                private_dir(folder)
                # Addresses and live tokens: the file is made 0600 before SQLite opens it, and
                # SQLite gives its -wal and -shm files the database file's mode.
                create_private(Path(parsed.database))
            except OSError as exc:
                raise StoreError(
                    f"cannot open the database {url}: cannot create {folder}: {exc.strerror}",
                    "check DIGEST_DATABASE_URL and that the folder is writable",
                ) from None
        engine = create_engine(parsed, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    # libpq waits forever for an unreachable host by default; a cron job should not.
    connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": 10}
    return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock (a hash: Python's is salted)."""
    return int.from_bytes(
        hashlib.sha256(f"digest:{name}".encode()).digest()[:8], "big", signed=True
    )


class Store(
    ArticleQueries,
    SubscriberQueries,
    EditionQueries,
    LedgerQueries,
    EdgeQueries,
    WorkerQueries,
    ArchiveQueries,
    SectionQueries,
):
    def __init__(self, engine: Engine):
        self.engine = engine
        self.dialect = engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def list_lock(self, list_name: str, *, wait: bool = False) -> Iterator[bool]:
        """Take the server-wide lock of a list for the block (``wait``: until it is free, else
        only if it is free now); yields whether it is held.

        On PostgreSQL this is a session advisory lock on a connection kept for the block, so
        it excludes runs on every machine sharing the database, and the server releases it
        when the holder's connection ends, however the holder ends. SQLite has no server:
        there it always yields True, and the run lock file beside the database is the lock.
        """
        if self.dialect != "postgresql":
            yield True
            return
        key = _lock_key(f"list:{list_name}")
        take = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
        with self.engine.connect() as conn:
            result = conn.exec_driver_sql(f"SELECT {take}(%(k)s)", {"k": key}).scalar()
            held = True if wait else bool(result)
            conn.commit()  # no transaction left open (and no snapshot held) for the block
            try:
                yield held
            finally:
                if held:
                    try:
                        conn.exec_driver_sql("SELECT pg_advisory_unlock(%(k)s)", {"k": key})
                        conn.commit()
                    except OperationalError:
                        conn.invalidate()  # a lost connection took its lock with it


def open_store(url: str, *, migrate_schema: bool = True) -> Store:
    """Open the database at ``url`` and bring its schema up to date."""
    engine = _engine(url)
    safe = make_url(url).render_as_string(hide_password=True)
    try:
        if migrate_schema:
            migrate(engine)
        else:
            with engine.connect():
                pass
    except OperationalError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        hint = (
            "check DIGEST_DATABASE_URL (host, port, user, password, database) and that "
            "the server is running"
            if engine.dialect.name == "postgresql"
            else "check DIGEST_DATABASE_URL and that the folder is writable"
        )
        raise StoreError(f"cannot open the database {safe}: {reason}", hint) from None
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"cannot open the database {safe}: driver {exc.name} is not installed",
            "pip install 'psycopg[binary]' for PostgreSQL",
        ) from None
    return Store(engine)
