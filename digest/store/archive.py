"""Queries of the public archive: the editions of a list whose sending started.

An edition is public once its ledger is whole (status ``sending``) or done (``complete``).
The states are named here one by one, never as "not open": an edition in any other state,
today's or one added later (a draft, say), stays out of the archive.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, Select, func, select

from digest import periods
from digest.models import EditionState
from digest.store import schema

e, lst = schema.editions, schema.lists

PUBLIC_STATES = (EditionState.sending.value, EditionState.complete.value)


@dataclass(frozen=True)
class PublishedEdition:
    """One edition of the archive, as its index lists it."""

    key: str
    created_at: datetime  # when its selection was frozen: its content has not changed since


class ArchiveQueries:
    engine: Engine

    def _published(self, list_name: str, apart: Collection[str]) -> Select:
        query = (
            # An edition curated as a draft was created before it was frozen: the frozen
            # time is when its content was fixed.
            select(e.c.key, func.coalesce(e.c.frozen_at, e.c.created_at).label("created_at"))
            .join(lst, lst.c.id == e.c.list_id)
            .where(lst.c.name == list_name, e.c.status.in_(PUBLIC_STATES))
        )
        # Not the series ``apart`` (daily, weekly, monthly): the editions of readers who
        # chose another frequency repeat what the list's own show already.
        for kind in apart:
            query = query.where(e.c.key.not_like(periods.key_like(kind)))
        return query

    def published_editions(
        self,
        list_name: str,
        limit: int | None = None,
        offset: int = 0,
        apart: Collection[str] = (),
    ) -> list[PublishedEdition]:
        """The list's public editions (none of the series ``apart``), newest key first."""
        query = self._published(list_name, apart).order_by(e.c.key.desc()).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [PublishedEdition(row.key, row.created_at) for row in conn.execute(query)]

    def published_count(self, list_name: str, apart: Collection[str] = ()) -> int:
        with self.engine.connect() as conn:
            return (
                conn.scalar(
                    select(func.count()).select_from(self._published(list_name, apart).subquery())
                )
                or 0
            )

    def published_edition(
        self, list_name: str, key: str, apart: Collection[str] = ()
    ) -> PublishedEdition | None:
        """The list's edition of ``key`` when it is public, else None."""
        with self.engine.connect() as conn:
            row = conn.execute(self._published(list_name, apart).where(e.c.key == key)).first()
        return None if row is None else PublishedEdition(row.key, row.created_at)
