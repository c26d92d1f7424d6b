"""Queries on lists, subscribers, subscriptions and suppressions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, and_, delete, select, update

from digest.errors import SubscriberError
from digest.models import Subscriber, SubscriberStatus
from digest.store import schema
from digest.store._sql import address_hash, email_key, insert_ignore

s, sub, lst, sup = schema.subscribers, schema.subscriptions, schema.lists, schema.suppressions


@dataclass(frozen=True)
class NewSubscriber:
    """A subscriber to add or import: ``sections`` None means every section."""

    email: str
    name: str = ""
    lists: tuple[str, ...] = ()
    sections: frozenset[str] | None = None
    status: SubscriberStatus = SubscriberStatus.active
    consent_source: str | None = None


def _sections_out(value: str | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value.split())


def _sections_in(value: frozenset[str] | None) -> str | None:
    return None if value is None else " ".join(sorted(value))


class SubscriberQueries:
    engine: Engine
    dialect: str

    def ensure_lists(self, items: Iterable[tuple[str, str]]) -> None:
        with self.engine.begin() as conn:
            for name, title in items:
                conn.execute(insert_ignore(self.dialect, lst, ["name"]).values(
                    name=name, title=title))
                conn.execute(update(lst).where(lst.c.name == name).values(title=title))

    def _list_ids(self, conn: Connection) -> dict[str, int]:
        return {r.name: r.id for r in conn.execute(select(lst.c.name, lst.c.id))}

    def add_subscribers(self, items: Sequence[NewSubscriber], now: datetime, *,
                        existing: str = "error", allow_suppressed: bool = False
                        ) -> dict[str, int]:
        """Add subscribers in one transaction; all or nothing.

        ``existing`` says what to do with an address already stored: "error" (raise, nothing
        is written), "skip", or "update" (name and subscriptions take the new values; rows
        that change nothing count as skipped).
        Suppressed addresses are refused unless ``allow_suppressed``.
        Returns counts: added, updated, skipped.
        """
        counts = {"added": 0, "updated": 0, "skipped": 0}
        with self.engine.begin() as conn:
            list_ids = self._list_ids(conn)
            suppressed = self._suppressed_keys(conn, [i.email for i in items])
            for item in items:
                key = email_key(item.email)
                if key in suppressed and not allow_suppressed:
                    raise SubscriberError(
                        f"{item.email} is on the suppression list ({suppressed[key]})",
                        "pass --force to add it anyway, with the person's consent")
                for name in item.lists:
                    if name not in list_ids:
                        raise SubscriberError(f"{item.email}: no list named {name!r}")
                row = conn.execute(select(s.c.id, s.c.name).where(s.c.email_key == key)).first()
                if row is None:
                    subscriber_id = conn.execute(s.insert().values(
                        email=item.email.strip(), email_key=key, name=item.name,
                        status=item.status.value, consent_source=item.consent_source,
                        consent_at=now, created_at=now, updated_at=now)).inserted_primary_key[0]
                    counts["added"] += 1
                elif existing == "error":
                    raise SubscriberError(f"{item.email} is already a subscriber",
                                          "use `digest subscribers show` to see it")
                elif existing == "skip" or not self._differs(conn, row, item, list_ids):
                    counts["skipped"] += 1
                    continue
                else:
                    # The status is left alone: an import never re-subscribes someone who left.
                    conn.execute(update(s).where(s.c.id == row.id).values(
                        name=item.name, updated_at=now))
                    subscriber_id = row.id
                    counts["updated"] += 1
                for name in item.lists:
                    self._subscribe(conn, subscriber_id, list_ids[name], item.sections, now)
        return counts

    def _differs(self, conn: Connection, row, item: NewSubscriber, list_ids: dict[str, int]
                 ) -> bool:
        if row.name != item.name:
            return True
        current = {r.list_id: r.sections for r in conn.execute(
            select(sub.c.list_id, sub.c.sections).where(sub.c.subscriber_id == row.id))}
        return any(current.get(list_ids[name], "-") != _sections_in(item.sections)
                   for name in item.lists)

    def _subscribe(self, conn: Connection, subscriber_id: int, list_id: int,
                   sections: frozenset[str] | None, now: datetime) -> None:
        conn.execute(insert_ignore(self.dialect, sub, ["subscriber_id", "list_id"]).values(
            subscriber_id=subscriber_id, list_id=list_id, sections=_sections_in(sections),
            created_at=now))
        conn.execute(update(sub).where(and_(sub.c.subscriber_id == subscriber_id,
                                            sub.c.list_id == list_id))
                     .values(sections=_sections_in(sections)))

    def subscriber(self, email: str) -> Subscriber | None:
        """One subscriber with the lists it is on (sections: those of its first list)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(s).where(s.c.email_key == email_key(email))).first()
            if row is None:
                return None
            subs = conn.execute(select(lst.c.name, sub.c.sections).join(
                lst, lst.c.id == sub.c.list_id).where(sub.c.subscriber_id == row.id)
                .order_by(lst.c.name)).all()
        return Subscriber(id=row.id, email=row.email, name=row.name,
                          status=SubscriberStatus(row.status),
                          sections=_sections_out(subs[0].sections) if subs else None,
                          lists=tuple(r.name for r in subs))

    def subscriptions(self, email: str) -> dict[str, frozenset[str] | None]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(lst.c.name, sub.c.sections)
                                .join(lst, lst.c.id == sub.c.list_id)
                                .join(s, s.c.id == sub.c.subscriber_id)
                                .where(s.c.email_key == email_key(email))).all()
        return {r.name: _sections_out(r.sections) for r in rows}

    def subscribers(self, list_name: str | None = None,
                    status: SubscriberStatus | None = None) -> list[Subscriber]:
        """Subscribers ordered by address; with a list, only its members and their sections."""
        query = select(s.c.id, s.c.email, s.c.name, s.c.status).order_by(s.c.email_key)
        if status is not None:
            query = query.where(s.c.status == status.value)
        with self.engine.connect() as conn:
            if list_name is not None:
                query = (query.add_columns(sub.c.sections)
                         .join(sub, sub.c.subscriber_id == s.c.id)
                         .join(lst, lst.c.id == sub.c.list_id).where(lst.c.name == list_name))
                return [Subscriber(id=r.id, email=r.email, name=r.name,
                                   status=SubscriberStatus(r.status), lists=(list_name,),
                                   sections=_sections_out(r.sections)) for r in conn.execute(query)]
            memberships: dict[int, list[tuple[str, str | None]]] = {}
            for r in conn.execute(select(sub.c.subscriber_id, lst.c.name, sub.c.sections)
                                  .join(lst, lst.c.id == sub.c.list_id).order_by(lst.c.name)):
                memberships.setdefault(r.subscriber_id, []).append((r.name, r.sections))
            out = []
            for r in conn.execute(query):
                ms = memberships.get(r.id, [])
                out.append(Subscriber(id=r.id, email=r.email, name=r.name,
                                      status=SubscriberStatus(r.status),
                                      lists=tuple(m[0] for m in ms),
                                      sections=_sections_out(ms[0][1]) if ms else None))
            return out

    def recipients(self, list_name: str) -> list[Subscriber]:
        """The active, unsuppressed subscribers of a list, with their sections."""
        # Suppressions are matched by hash: erased addresses keep nothing else.
        members = self.subscribers(list_name, SubscriberStatus.active)
        with self.engine.connect() as conn:
            hashes = set(conn.scalars(select(sup.c.address_hash)))
        return [m for m in members if address_hash(m.email) not in hashes]

    def deliverable(self, subscriber_id: int, list_name: str) -> bool:
        """Whether a subscriber may still be mailed on this list, checked at claim time."""
        with self.engine.connect() as conn:
            row = conn.execute(select(s.c.email, s.c.status)
                               .join(sub, sub.c.subscriber_id == s.c.id)
                               .join(lst, lst.c.id == sub.c.list_id)
                               .where(s.c.id == subscriber_id, lst.c.name == list_name)).first()
            if row is None or row.status != SubscriberStatus.active.value:
                return False
            return conn.execute(select(sup.c.id).where(
                sup.c.address_hash == address_hash(row.email))).first() is None

    def set_status(self, email: str, status: SubscriberStatus, now: datetime) -> Subscriber:
        with self.engine.begin() as conn:
            result = conn.execute(update(s).where(s.c.email_key == email_key(email))
                                  .values(status=status.value, updated_at=now))
        if result.rowcount == 0:
            raise SubscriberError(f"no subscriber {email}")
        return self.subscriber(email)

    def remove_subscriber(self, email: str, now: datetime, *, erase: bool = False) -> None:
        """Delete a subscriber; with ``erase``, keep only a hashed suppression entry."""
        with self.engine.begin() as conn:
            row = conn.execute(select(s.c.id).where(s.c.email_key == email_key(email))).first()
            if row is None:
                raise SubscriberError(f"no subscriber {email}")
            conn.execute(delete(s).where(s.c.id == row.id))
            if erase:
                h = address_hash(email)
                conn.execute(delete(sup).where(sup.c.address_hash == h))
                conn.execute(sup.insert().values(address_hash=h, email=None, reason="erased",
                                                 created_at=now))

    def suppress(self, email: str, reason: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert_ignore(self.dialect, sup, ["address_hash"]).values(
                address_hash=address_hash(email), email=email.strip(), reason=reason,
                created_at=now))

    def _suppressed_keys(self, conn: Connection, emails: Sequence[str]) -> dict[str, str]:
        by_hash = {address_hash(e): email_key(e) for e in emails}
        found: dict[str, str] = {}
        hashes = list(by_hash)
        for i in range(0, len(hashes), 500):
            for r in conn.execute(select(sup.c.address_hash, sup.c.reason)
                                  .where(sup.c.address_hash.in_(hashes[i:i + 500]))):
                found[by_hash[r.address_hash]] = r.reason
        return found
