"""Queries on editions and their frozen article selection."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from digest.models import Edition, EditionState, Section
from digest.store import schema
from digest.store._sql import inserted_id
from digest.store.articles import article_from_row

e, ea, a, lst = schema.editions, schema.edition_articles, schema.articles, schema.lists


class EditionQueries:
    engine: Engine
    dialect: str

    def edition(self, list_name: str, key: str) -> Edition | None:
        """The edition of a list for a key, with its frozen sections, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(e.c.id, e.c.key, e.c.created_at)
                .join(lst, lst.c.id == e.c.list_id)
                .where(lst.c.name == list_name, e.c.key == key)
            ).first()
            if row is None:
                return None
            items = conn.execute(
                select(a, ea.c.section.label("ea_section"), ea.c.section_title)
                .join(ea, ea.c.article_id == a.c.id)
                .where(ea.c.edition_id == row.id)
                .order_by(ea.c.position)
            ).all()
        sections: list[Section] = []
        for item in items:
            if not sections or sections[-1].slug != item.ea_section:
                sections.append(Section(item.ea_section, item.section_title, ()))
            last = sections[-1]
            sections[-1] = Section(last.slug, last.title, (*last.articles, article_from_row(item)))
        return Edition(
            id=row.id,
            list_name=list_name,
            key=row.key,
            created_at=row.created_at,
            sections=tuple(sections),
        )

    def edition_record(self, list_name: str, key: str | None = None) -> dict | None:
        """An edition's id, key, status and times (the latest one when ``key`` is None)."""
        query = (
            select(e.c.id, e.c.key, e.c.status, e.c.created_at, e.c.completed_at)
            .join(lst, lst.c.id == e.c.list_id)
            .where(lst.c.name == list_name)
        )
        query = query.where(e.c.key == key) if key else query.order_by(e.c.key.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else dict(row._mapping)

    def edition_status(self, edition_id: int) -> EditionState:
        with self.engine.connect() as conn:
            return EditionState(
                conn.execute(select(e.c.status).where(e.c.id == edition_id)).scalar_one()
            )

    def previous_edition_time(self, list_name: str, before_key: str) -> datetime | None:
        """When the list's latest edition before ``before_key`` was created."""
        with self.engine.connect() as conn:
            return conn.scalar(
                select(e.c.created_at)
                .join(lst, lst.c.id == e.c.list_id)
                .where(lst.c.name == list_name, e.c.key < before_key)
                .order_by(e.c.key.desc())
                .limit(1)
            )

    def sent_article_keys(self, list_name: str) -> set[str]:
        """Keys of every article already in an edition of this list."""
        with self.engine.connect() as conn:
            return set(
                conn.scalars(
                    select(a.c.key)
                    .join(ea, ea.c.article_id == a.c.id)
                    .join(e, e.c.id == ea.c.edition_id)
                    .join(lst, lst.c.id == e.c.list_id)
                    .where(lst.c.name == list_name)
                )
            )

    def create_edition(self, edition: Edition) -> Edition:
        """Freeze an edition's selection, or return the one created before for the same key."""
        try:
            with self.engine.begin() as conn:
                list_id = conn.scalar(select(lst.c.id).where(lst.c.name == edition.list_name))
                edition_id = inserted_id(
                    conn.execute(
                        e.insert().values(
                            list_id=list_id,
                            key=edition.key,
                            status=EditionState.open,
                            created_at=edition.created_at,
                        )
                    )
                )
                position = 0
                for section in edition.sections:
                    for article in section.articles:
                        conn.execute(
                            ea.insert().values(
                                edition_id=edition_id,
                                article_id=article.id,
                                section=section.slug,
                                section_title=section.title,
                                position=position,
                            )
                        )
                        position += 1
        except IntegrityError:
            existing = self.edition(edition.list_name, edition.key)
            if existing is None:
                raise
            return existing
        created = self.edition(edition.list_name, edition.key)
        assert created is not None  # inserted by the transaction committed above
        return created

    def complete_edition(self, edition_id: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(e)
                .where(e.c.id == edition_id, e.c.status != EditionState.complete)
                .values(status=EditionState.complete, completed_at=now)
            )
