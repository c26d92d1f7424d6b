"""Small SQL helpers shared by the query mixins."""

from __future__ import annotations

import hashlib

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(dialect: str, table: Table, index_elements: list[str] | None = None):
    """INSERT ... ON CONFLICT DO NOTHING for the engine in use."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing(index_elements=index_elements)


def email_key(email: str) -> str:
    """The form under which addresses are unique: case-folded, whitespace trimmed."""
    return email.strip().casefold()


def address_hash(email: str) -> str:
    return hashlib.sha256(email_key(email).encode()).hexdigest()
