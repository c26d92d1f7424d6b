"""Queries on editions: drafts holding the editor's curation, and frozen article selections.

An edition row is a ``draft`` while it holds only curation (its articles are chosen again at
every look); ``freeze_edition`` fixes its articles and fills its ledger in one transaction,
so an edition is never frozen without a message queued, nor queued without being frozen.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from digest import periods
from digest.models import (
    EVERY_READER,
    Curation,
    DeliveryState,
    Edition,
    EditionState,
    Readers,
    Section,
)
from digest.store import schema
from digest.store._sql import inserted_id
from digest.store.articles import article_from_row
from digest.store.ledger import fill_ledger

e, ea, a, lst, d = (
    schema.editions,
    schema.edition_articles,
    schema.articles,
    schema.lists,
    schema.deliveries,
)
FROZEN = (EditionState.open, EditionState.sending, EditionState.complete)


def curation_json(curation: Curation) -> str | None:
    if not curation:
        return None
    return json.dumps(
        {
            "leads": list(curation.leads),
            "pins": list(curation.pins),
            "drops": list(curation.drops),
            "moves": [list(m) for m in curation.moves],
            "note": curation.note,
        },
        ensure_ascii=False,
    )


def curation_from(text: str | None) -> Curation:
    if not text:
        return Curation()
    data: dict[str, Any] = json.loads(text)
    return Curation(
        leads=tuple(int(i) for i in data.get("leads", ())),
        pins=tuple(int(i) for i in data.get("pins", ())),
        drops=tuple(int(i) for i in data.get("drops", ())),
        moves=tuple((int(i), int(p)) for i, p in data.get("moves", ())),
        note=str(data.get("note", "")),
    )


class _Abandon(Exception):
    """Rolls back a freeze that would have queued nobody."""


class EditionQueries:
    engine: Engine
    dialect: str

    def edition(self, list_name: str, key: str) -> Edition | None:
        """The stored edition of a list for a key (a draft holds no articles), or None; each
        section with the other reports of its stories (``Section.also``)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(e.c.id, e.c.key, e.c.status, e.c.created_at, e.c.frozen_at, e.c.curation)
                .join(lst, lst.c.id == e.c.list_id)
                .where(lst.c.name == list_name, e.c.key == key)
            ).first()
            if row is None:
                return None
            items = conn.execute(
                select(a, ea.c.section.label("ea_section"), ea.c.section_title, ea.c.also_for)
                .join(ea, ea.c.article_id == a.c.id)
                .where(ea.c.edition_id == row.id)
                .order_by(ea.c.position)
            ).all()
        shown: dict[int, list] = {}  # an article shown -> [its section's slug, its key]
        also: dict[str, dict[str, tuple]] = {}  # a section -> an article's key -> reports
        sections: list[Section] = []
        for item in items:
            article = article_from_row(item)
            if item.also_for is not None and item.also_for in shown:
                slug, key = shown[item.also_for]
                reports = also.setdefault(slug, {})
                reports[key] = (*reports.get(key, ()), article)
                continue
            shown[item.id] = [item.ea_section, article.key]
            if not sections or sections[-1].slug != item.ea_section:
                sections.append(Section(item.ea_section, item.section_title, ()))
            last = sections[-1]
            sections[-1] = Section(last.slug, last.title, (*last.articles, article))
        sections = [Section(s.slug, s.title, s.articles, also.get(s.slug, {})) for s in sections]
        return Edition(
            id=row.id,
            list_name=list_name,
            key=row.key,
            created_at=row.created_at,
            sections=tuple(sections),
            state=EditionState(row.status),
            curation=curation_from(row.curation),
            frozen_at=row.frozen_at,
        )

    def edition_record(
        self, list_name: str, key: str | None = None, kind: str | None = None
    ) -> dict | None:
        """An edition's id, key, status and times (when ``key`` is None, the latest frozen
        one of the series of ``kind``: daily, weekly or monthly; None: of any)."""
        query = (
            select(e.c.id, e.c.key, e.c.status, e.c.created_at, e.c.completed_at)
            .join(lst, lst.c.id == e.c.list_id)
            .where(lst.c.name == list_name)
        )
        if key:
            query = query.where(e.c.key == key)
        else:
            if kind is not None:
                query = query.where(e.c.key.like(periods.key_like(kind)))
            query = query.where(e.c.status.in_(FROZEN)).order_by(e.c.key.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else dict(row._mapping)

    def edition_status(self, edition_id: int) -> EditionState:
        with self.engine.connect() as conn:
            return EditionState(
                conn.execute(select(e.c.status).where(e.c.id == edition_id)).scalar_one()
            )

    def previous_edition_time(self, list_name: str, before_key: str) -> datetime | None:
        """When the list's latest frozen edition before ``before_key``, of its series (keys
        of the same shape), was frozen."""
        with self.engine.connect() as conn:
            return conn.scalar(
                select(func.coalesce(e.c.frozen_at, e.c.created_at))
                .join(lst, lst.c.id == e.c.list_id)
                .where(
                    lst.c.name == list_name,
                    e.c.key < before_key,
                    e.c.key.like(periods.key_like(periods.key_kind(before_key))),
                    e.c.status.in_(FROZEN),
                )
                .order_by(e.c.key.desc())
                .limit(1)
            )

    def latest_frozen_key(self, list_name: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.scalar(
                select(e.c.key)
                .join(lst, lst.c.id == e.c.list_id)
                .where(lst.c.name == list_name, e.c.status.in_(FROZEN))
                .order_by(e.c.key.desc())
                .limit(1)
            )

    def sent_article_keys(self, list_name: str, kind: str | None = None) -> set[str]:
        """Keys of every article in a frozen edition of this list (drafts hold none), the
        other reports of its stories (its "Also:" links) included; of the series of ``kind``
        only (daily, weekly, monthly) when given."""
        query = (
            select(a.c.key)
            .join(ea, ea.c.article_id == a.c.id)
            .join(e, e.c.id == ea.c.edition_id)
            .join(lst, lst.c.id == e.c.list_id)
            .where(lst.c.name == list_name)
        )
        if kind is not None:
            query = query.where(e.c.key.like(periods.key_like(kind)))
        with self.engine.connect() as conn:
            return set(conn.scalars(query))

    def create_edition(self, edition: Edition) -> Edition:
        """Freeze an edition's selection without filling its ledger (state ``open``; the
        ledger follows with ``enqueue_list``), or return the frozen one of the same key."""
        try:
            with self.engine.begin() as conn:
                self._freeze(conn, edition, EditionState.open, edition.created_at)
        except IntegrityError:
            pass  # created meanwhile by another run: that one stands
        created = self.edition(edition.list_name, edition.key)
        assert created is not None  # inserted above, or by the run that won the race
        return created

    def freeze_edition(
        self,
        edition: Edition,
        now: datetime,
        readers: Readers = EVERY_READER,
        due: Callable[[str | None], datetime] | None = None,
    ) -> Edition | None:
        """Fix a draft's articles and queue its messages to the readers of its series, in one
        transaction: the edition turns ``sending`` with its ledger whole. None (and nothing
        changed: it stays a draft) when it would go to nobody. An edition frozen already is
        returned as it is. ``due``: each row's moment from its reader's zone
        (``fill_ledger``)."""
        try:
            with self.engine.begin() as conn:
                edition_id = self._freeze(conn, edition, EditionState.sending, now)
                if edition_id is not None and not fill_ledger(
                    conn, self.dialect, edition_id, edition.list_name, now, readers, due
                ):
                    raise _Abandon
        except _Abandon:
            return None
        except IntegrityError:
            pass  # frozen meanwhile by another run: that one stands
        return self.edition(edition.list_name, edition.key)

    def _freeze(
        self, conn: Connection, edition: Edition, state: EditionState, now: datetime
    ) -> int | None:
        """Write the edition frozen in ``state`` with its articles; its id, or None when it
        was frozen already."""
        list_id = conn.scalar(select(lst.c.id).where(lst.c.name == edition.list_name))
        row = conn.execute(
            select(e.c.id, e.c.status).where(e.c.list_id == list_id, e.c.key == edition.key)
        ).first()
        values = {"status": state, "frozen_at": now, "curation": curation_json(edition.curation)}
        if row is None:
            edition_id = inserted_id(
                conn.execute(
                    e.insert().values(
                        list_id=list_id, key=edition.key, created_at=edition.created_at, **values
                    )
                )
            )
        elif row.status == EditionState.draft:
            taken = conn.execute(
                update(e).where(e.c.id == row.id, e.c.status == EditionState.draft).values(values)
            )
            if taken.rowcount != 1:
                return None
            edition_id = row.id
        else:
            return None
        # Each article shown, followed by the other reports of its story (``also_for`` it).
        placed = [
            (section, report, None if report is article else article.id)
            for section in edition.sections
            for article in section.articles
            for report in (article, *section.also_for(article))
        ]
        rows = [
            {
                "edition_id": edition_id,
                "article_id": article.id,
                "section": section.slug,
                "section_title": section.title,
                "position": position,
                "also_for": also_for,
            }
            for position, (section, article, also_for) in enumerate(placed)
        ]
        if rows:
            conn.execute(ea.insert(), rows)
        return int(edition_id)

    def save_curation(
        self, list_name: str, key: str, curation: Curation, now: datetime
    ) -> EditionState | None:
        """Store the editor's curation of a draft (created for it when there is none); None
        when saved, else the state of the frozen edition that refused it."""
        with self.engine.begin() as conn:
            list_id = conn.scalar(select(lst.c.id).where(lst.c.name == list_name))
            row = conn.execute(
                select(e.c.id, e.c.status).where(e.c.list_id == list_id, e.c.key == key)
            ).first()
            if row is None:
                conn.execute(
                    e.insert().values(
                        list_id=list_id,
                        key=key,
                        status=EditionState.draft,
                        created_at=now,
                        curation=curation_json(curation),
                    )
                )
                return None
            saved = conn.execute(
                update(e)
                .where(e.c.id == row.id, e.c.status == EditionState.draft)
                .values(curation=curation_json(curation))
            )
            return None if saved.rowcount == 1 else EditionState(row.status)

    def reopen_edition(self, list_name: str, key: str) -> bool:
        """Turn an edition frozen before anything was queued (state ``open``) back into a
        draft; whether it did."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(e.c.id)
                .join(lst, lst.c.id == e.c.list_id)
                .where(lst.c.name == list_name, e.c.key == key, e.c.status == EditionState.open)
            ).first()
            if row is None or conn.scalar(select(d.c.id).where(d.c.edition_id == row.id).limit(1)):
                return False
            conn.execute(delete(ea).where(ea.c.edition_id == row.id))
            conn.execute(
                update(e).where(e.c.id == row.id).values(status=EditionState.draft, frozen_at=None)
            )
        return True

    def editions_overview(self, list_name: str) -> list[dict]:
        """Every stored edition of a list, newest first: key, state, times, how many
        articles, and its ledger's counts and first and last send."""
        articles = (
            select(func.count())
            .where(ea.c.edition_id == e.c.id, ea.c.also_for.is_(None))
            .correlate(e)
            .scalar_subquery()
        )
        ledger = (
            select(
                d.c.edition_id,
                func.count().label("recipients"),
                func.sum(case((d.c.state == DeliveryState.sent, 1), else_=0)).label("sent"),
                func.sum(case((d.c.state == DeliveryState.failed, 1), else_=0)).label("failed"),
                func.min(d.c.sent_at).label("first_sent"),
                func.max(d.c.sent_at).label("last_sent"),
            )
            .group_by(d.c.edition_id)
            .subquery()
        )
        query = (
            select(
                e.c.id,
                e.c.key,
                e.c.status,
                e.c.created_at,
                e.c.frozen_at,
                e.c.completed_at,
                e.c.curation,
                articles.label("articles"),
                ledger.c.recipients,
                ledger.c.sent,
                ledger.c.failed,
                ledger.c.first_sent,
                ledger.c.last_sent,
            )
            .join(lst, lst.c.id == e.c.list_id)
            .outerjoin(ledger, ledger.c.edition_id == e.c.id)
            .where(lst.c.name == list_name)
            .order_by(e.c.key.desc())
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            {
                "id": row.id,
                "key": row.key,
                "state": row.status,
                "articles": row.articles,
                "recipients": row.recipients or 0,
                "sent": int(row.sent or 0),
                "failed": int(row.failed or 0),
                "created_at": row.created_at,
                "frozen_at": row.frozen_at,
                "completed_at": row.completed_at,
                "first_sent_at": row.first_sent,
                "last_sent_at": row.last_sent,
                "curated": bool(curation_from(row.curation)),
            }
            for row in rows
        ]

    def editorial_mark(self) -> str:
        """A short value that changes whenever a draft's content may: articles stored or
        updated, editions curated, frozen or completed."""
        with self.engine.connect() as conn:
            articles = conn.execute(
                select(func.count(), func.max(a.c.id), func.max(a.c.updated_at))
            ).one()
            # Every edition's state in two numbers (a state only moves forward), the drafts'
            # curation whole: a studio polls this, and a list's history grows by the day.
            states = conn.execute(
                select(
                    func.count(),
                    func.max(e.c.id),
                    func.sum(case((e.c.status == EditionState.draft, 0), else_=1)),
                    func.sum(case((e.c.status == EditionState.complete, 1), else_=0)),
                )
            ).one()
            drafts = conn.execute(
                select(e.c.id, e.c.curation)
                .where(e.c.status == EditionState.draft)
                .order_by(e.c.id)
            )
            marks = (tuple(articles), tuple(states), *map(tuple, drafts))
            digest = hashlib.sha256(repr(marks).encode())
        return digest.hexdigest()[:16]

    def complete_edition(self, edition_id: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(e)
                .where(e.c.id == edition_id, e.c.status.in_(FROZEN))
                .where(e.c.status != EditionState.complete)
                .values(status=EditionState.complete, completed_at=now)
            )
