"""Small SQL helpers shared by the query mixins."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, CursorResult, Float, Table, cast, extract, func

from digest.audience.addresses import email_key, legacy_key

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

__all__ = [
    "address_hash",
    "address_hashes",
    "db_clock",
    "email_key",
    "insert_ignore",
    "key_hash",
]


def insert_ignore(
    dialect: str, table: Table, index_elements: list[str] | None = None
) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT DO NOTHING for the engine in use."""
    # Imported here: the PostgreSQL dialect alone is a tenth of a store command's start-up on
    # SQLite, where it is never used.
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=index_elements)
    from sqlalchemy.dialects.sqlite import insert

    return insert(table).on_conflict_do_nothing(index_elements=index_elements)


def address_hash(email: str) -> str:
    """What a suppression is stored as: the SHA-256 of the address's key."""
    return key_hash(email_key(email))


def key_hash(key: str) -> str:
    """The SHA-256 of an address's key (``email_key``, as the subscribers table holds it)."""
    return hashlib.sha256(key.encode()).hexdigest()


def address_hashes(email: str) -> set[str]:
    """The hashes a suppression of this address may be stored under: its key's and, for an
    internationalized domain, the one earlier versions computed (an address erased then is
    only known by that hash). Only there: such a key holds a Unicode domain, which no key
    of today does, so it can never stand for another address; elsewhere the old key's case
    folding (``ß`` as ``ss``) would take one mailbox for another."""
    hashes = {address_hash(email)}
    if "xn--" in email.rpartition("@")[2].lower():
        hashes.add(hashlib.sha256(legacy_key(email).encode()).hexdigest())
    return hashes


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
