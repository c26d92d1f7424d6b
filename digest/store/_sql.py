"""Small SQL helpers shared by the query mixins."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, Float, Table, cast, extract, func
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(
    dialect: str, table: Table, index_elements: list[str] | None = None
) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT DO NOTHING for the engine in use."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing(index_elements=index_elements)


def email_key(email: str) -> str:
    """The form under which addresses are unique: case-folded, whitespace trimmed."""
    return email.strip().casefold()


def address_hash(email: str) -> str:
    return hashlib.sha256(email_key(email).encode()).hexdigest()


def db_clock(dialect: str) -> ColumnElement[float]:
    """The database server's clock in seconds since the epoch, as an SQL expression: leases
    shared by several machines are timed by the one clock they all see."""
    if dialect == "postgresql":
        return cast(extract("epoch", func.clock_timestamp()), Float)
    return (func.julianday("now") - 2440587.5) * 86400.0


def inserted_id(result: CursorResult[Any]) -> Any:
    """The primary key of the row an INSERT of one row created."""
    key = result.inserted_primary_key
    if key is None:  # a statement that did not insert one row
        raise TypeError("no row was inserted")
    return key[0]
