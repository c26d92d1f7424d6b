"""The rows of store tables as plain tuples, to show that a command changed none of them."""

from __future__ import annotations

from sqlalchemy import select

from digest.store import open_store, schema


def table_rows(db_url: str, *tables: str) -> dict[str, list[tuple]]:
    """Every row of each named table (``schema`` names), in primary-key order."""
    store = open_store(db_url, migrate_schema=False)
    try:
        with store.engine.connect() as conn:
            found = {}
            for name in tables:
                table = schema.metadata.tables[name]
                query = select(table).order_by(*table.primary_key.columns)
                found[name] = [tuple(row) for row in conn.execute(query)]
            return found
    finally:
        store.close()
