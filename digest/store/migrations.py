"""Schema migrations: a list of small functions applied in order, each in its own transaction.

A database records the versions it has in ``schema_migrations``; ``migrate()`` applies the
missing ones. Add a new function at the end for every schema change; never edit an old one,
so that every user's database reaches the same schema whatever version it started from.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Connection, Engine, inspect, select

from digest.store import schema


def _m001_initial(conn: Connection) -> None:
    tables = [schema.sections, schema.feeds, schema.articles, schema.lists, schema.subscribers,
              schema.subscriptions, schema.editions, schema.edition_articles,
              schema.deliveries, schema.suppressions]
    schema.metadata.create_all(conn, tables=tables)


MIGRATIONS = [
    (1, "initial schema", _m001_initial),
]


def migrate(engine: Engine) -> list[int]:
    """Bring the database to the newest schema; return the versions applied now."""
    schema.metadata.create_all(engine, tables=[schema.schema_migrations])
    applied: list[int] = []
    with engine.connect() as conn:
        done = set(conn.scalars(select(schema.schema_migrations.c.version)))
    for version, name, step in MIGRATIONS:
        if version in done:
            continue
        with engine.begin() as conn:
            step(conn)
            conn.execute(schema.schema_migrations.insert().values(
                version=version, name=name, applied_at=datetime.now(timezone.utc)))
        applied.append(version)
    return applied


def current_version(engine: Engine) -> int:
    if not inspect(engine).has_table("schema_migrations"):
        return 0
    with engine.connect() as conn:
        return max(conn.scalars(select(schema.schema_migrations.c.version)), default=0)
