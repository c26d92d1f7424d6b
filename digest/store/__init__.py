"""The store: the only part of digest that speaks SQL.

``Store`` wraps a SQLAlchemy engine (SQLite by default, PostgreSQL for scale-out) and offers
the queries the other stages need, grouped by table family in the mixins below. Every write
that must be all-or-nothing runs in one transaction.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from digest.errors import StoreError
from digest.store.articles import ArticleQueries
from digest.store.edge import EdgeQueries
from digest.store.editions import EditionQueries
from digest.store.ledger import LedgerQueries
from digest.store.migrations import migrate
from digest.store.subscribers import SubscriberQueries

__all__ = ["Store", "open_store"]


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"DIGEST_DATABASE_URL is not a database URL: {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot open the database {url}: cannot create {folder}: "
                                 f"{exc.strerror}",
                                 "check DIGEST_DATABASE_URL and that the folder is writable"
                                 ) from None
        engine = create_engine(parsed, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True)


class Store(ArticleQueries, SubscriberQueries, EditionQueries, LedgerQueries, EdgeQueries):
    def __init__(self, engine: Engine):
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()


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
        raise StoreError(f"cannot open the database {safe}: {reason}",
                         "check DIGEST_DATABASE_URL and that the folder is writable") from None
    except ModuleNotFoundError as exc:
        raise StoreError(f"cannot open the database {safe}: driver {exc.name} is not installed",
                         "pip install 'psycopg[binary]' for PostgreSQL") from None
    return Store(engine)
