"""Queries on sections as the stored data holds them: who chose which, how many articles each
has, and moving both from one section to another (`digest sections rename`).

A subscription's sections are its space-separated slugs (NULL: every section); pending
confirmations and web sign-ups carry the same form. Renaming a section rewrites those and
the articles' section in one transaction. Frozen editions keep the section each of their
articles was sent under: ``edition_articles`` has its own copy, which no rename touches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, Table, func, select, update

from digest.store import schema
from digest.store.subscribers import _sections_in, _sections_out

sub, lst = schema.subscriptions, schema.lists


@dataclass(frozen=True)
class SectionMove:
    """What renaming a section changed (a dry run: would change)."""

    subscriptions: int = 0  # list memberships whose sections named the old slug
    subscribers: int = 0  # the distinct subscribers holding those memberships
    articles: int = 0  # stored articles filed under the old slug
    pending: int = 0  # confirmations and web sign-ups not yet acted on that name it


def _holds(value: str | None, slug: str) -> bool:
    return value is not None and slug in value.split()


def _renamed(value: str, old: str, new: str) -> str | None:
    chosen = _sections_out(value) or frozenset()
    return _sections_in((chosen - {old}) | {new})


class SectionQueries:
    engine: Engine
    dialect: str

    def stored_sections(self) -> dict[str, str]:
        """Every section the store knows (those of the definition, and any it dropped since):
        slug -> title."""
        with self.engine.connect() as conn:
            return dict(conn.execute(select(schema.sections.c.slug, schema.sections.c.title)).all())

    def article_counts(self) -> dict[str, int]:
        """Stored articles per section slug."""
        a = schema.articles
        with self.engine.connect() as conn:
            query = select(a.c.section, func.count()).group_by(a.c.section)
            return {section: count for section, count in conn.execute(query)}

    def section_choices(self, list_name: str | None = None) -> list[tuple[frozenset[str], int]]:
        """Each distinct explicit choice of sections (every-section subscriptions left out)
        with how many subscriptions hold it: of one list, or (None) how many subscribers hold
        it on any list."""
        if list_name is not None:
            query = (
                select(sub.c.sections, func.count())
                .join(lst, lst.c.id == sub.c.list_id)
                .where(lst.c.name == list_name, sub.c.sections.is_not(None))
                .group_by(sub.c.sections)
            )
            with self.engine.connect() as conn:
                return [(_sections_out(v) or frozenset(), n) for v, n in conn.execute(query)]
        by_subscriber: dict[int, set[str]] = {}
        with self.engine.connect() as conn:
            for sid, value in conn.execute(
                select(sub.c.subscriber_id, sub.c.sections).where(sub.c.sections.is_not(None))
            ):
                by_subscriber.setdefault(sid, set()).update(_sections_out(value) or ())
        counted: dict[frozenset[str], int] = {}
        for chosen in by_subscriber.values():
            counted[frozenset(chosen)] = counted.get(frozenset(chosen), 0) + 1
        return list(counted.items())

    def rename_section(
        self, old: str, new: str, now: datetime, *, dry_run: bool = False
    ) -> SectionMove:
        """Move every subscription, pending confirmation and sign-up naming ``old`` to ``new``
        (a subscriber holding both keeps one), and the articles filed under ``old`` to
        ``new``, in one transaction; ``dry_run`` rolls it back and only counts. ``new`` must
        be a stored section (the definition's sections are synced on every start)."""
        with self.engine.connect() as conn:
            transaction = conn.begin()
            try:
                moved = self._rename(conn, old, new, now)
            except BaseException:
                transaction.rollback()
                raise
            if dry_run:
                transaction.rollback()
            else:
                transaction.commit()
        return moved

    def _rename(self, conn: Connection, old: str, new: str, now: datetime) -> SectionMove:
        like = sub.c.sections.contains(old, autoescape=True)
        rows = [
            r
            for r in conn.execute(
                select(sub.c.subscriber_id, sub.c.list_id, sub.c.sections).where(like)
            )
            if _holds(r.sections, old)
        ]
        for r in rows:
            conn.execute(
                update(sub)
                .where(sub.c.subscriber_id == r.subscriber_id, sub.c.list_id == r.list_id)
                .values(sections=_renamed(r.sections, old, new), updated_at=now)
            )
        pending = sum(
            self._rename_by_id(conn, table, old, new)
            for table in (schema.confirmations, schema.signups)
        )
        a = schema.articles
        articles = conn.execute(
            update(a).where(a.c.section == old).values(section=new, updated_at=now)
        ).rowcount
        return SectionMove(
            subscriptions=len(rows),
            subscribers=len({r.subscriber_id for r in rows}),
            articles=articles or 0,
            pending=pending,
        )

    @staticmethod
    def _rename_by_id(conn: Connection, table: Table, old: str, new: str) -> int:
        rows: Iterable = conn.execute(
            select(table.c.id, table.c.sections).where(
                table.c.sections.contains(old, autoescape=True)
            )
        )
        held = [r for r in rows if _holds(r.sections, old)]
        for r in held:
            conn.execute(
                update(table)
                .where(table.c.id == r.id)
                .values(sections=_renamed(r.sections, old, new))
            )
        return len(held)
