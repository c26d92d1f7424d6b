"""Queries on lists, subscribers, their subscriptions, consent and suppressions.

A subscriber has one overall status (pending, active, unsubscribed, bounced, complained) and
one subscription per list, each with its own state (active, pending, unsubscribed), a pause
flag and its sections (NULL: every section). Mail goes only to an active subscriber's active,
unpaused subscriptions whose address is not suppressed. Suppressions are keyed by a hash of
the folded address, so an erased person leaves nothing else behind.

Imports are batched: existing rows and suppressions are read in chunks and new rows written
with executemany, in one transaction, so 100,000 rows take seconds, not minutes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Row, and_, delete, func, select, update

from digest.audience import policy
from digest.errors import SubscriberError
from digest.models import Membership, NewSubscriber, Subscriber, SubscriberRecord, SubscriberStatus
from digest.store import schema
from digest.store._sql import address_hash, address_hashes, email_key, insert_ignore

s, sub, lst, sup = schema.subscribers, schema.subscriptions, schema.lists, schema.suppressions
CHUNK = 900  # bound values per IN (...): below SQLite's old limit of 999
LIST_STATES = ("active", "pending", "unsubscribed")
T = TypeVar("T")
_REASONS = {SubscriberStatus.bounced: "hard-bounce", SubscriberStatus.complained: "complaint"}


def _sections_out(value: str | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value.split())


def _sections_in(value: frozenset[str] | None) -> str | None:
    return None if value is None else " ".join(sorted(value))


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class SubscriberQueries:
    engine: Engine
    dialect: str

    # -- lists ------------------------------------------------------------------------------

    def ensure_lists(self, items: Iterable[tuple[str, str]]) -> None:
        with self.engine.begin() as conn:
            for name, title in items:
                conn.execute(
                    insert_ignore(self.dialect, lst, ["name"]).values(name=name, title=title)
                )
                conn.execute(update(lst).where(lst.c.name == name).values(title=title))

    def _list_ids(self, conn: Connection) -> dict[str, int]:
        return {r.name: r.id for r in conn.execute(select(lst.c.name, lst.c.id))}

    def list_counts(self) -> dict[str, dict[str, int]]:
        """Per list, how many subscriptions are in each state (paused ones counted apart)."""
        out: dict[str, dict[str, int]] = {}
        query = (
            select(lst.c.name, sub.c.state, sub.c.paused, s.c.status, func.count())
            .select_from(lst)
            .join(sub, sub.c.list_id == lst.c.id, isouter=True)
            .join(s, s.c.id == sub.c.subscriber_id, isouter=True)
            .group_by(lst.c.name, sub.c.state, sub.c.paused, s.c.status)
        )
        with self.engine.connect() as conn:
            for name, state, paused, status, count in conn.execute(query):
                counts = out.setdefault(name, {})
                if state is None:
                    continue
                key = ("paused" if paused else state) if status == "active" else status
                counts[key] = counts.get(key, 0) + count
        return out

    # -- adding -----------------------------------------------------------------------------

    def _next_ids(self, conn: Connection, count: int) -> int:
        """The first of ``count`` fresh subscriber ids, never one a deleted subscriber had."""
        c = schema.counters
        # The counter row is locked (FOR UPDATE, on PostgreSQL) before the ids are read, so
        # concurrent sign-ups and imports take their ids in turn, never the same ones.
        conn.execute(insert_ignore(self.dialect, c, ["name"]).values(name="subscriber_id", value=0))
        floor = (
            conn.scalar(select(c.c.value).where(c.c.name == "subscriber_id").with_for_update()) or 0
        )
        top = conn.scalar(select(func.max(s.c.id))) or 0
        first = max(floor, top) + 1
        self._raise_floor(conn, first + count - 1)
        return first

    def _raise_floor(self, conn: Connection, value: int) -> None:
        c = schema.counters
        conn.execute(
            insert_ignore(self.dialect, c, ["name"]).values(name="subscriber_id", value=value)
        )
        conn.execute(
            update(c).where(c.c.name == "subscriber_id", c.c.value < value).values(value=value)
        )

    def add_subscribers(
        self,
        items: Sequence[NewSubscriber],
        now: datetime,
        *,
        existing: str = "error",
        allow_suppressed: bool = False,
        dry_run: bool = False,
    ) -> dict:
        """Add subscribers in one transaction; all or nothing.

        A new address is stored as the item says (a ``bounced`` or ``complained`` one is
        suppressed too). An address already stored goes through the consent policy: an item
        asking for an active subscription activates a subscription that is only pending (an
        operator's add of a pending sign-up), and nothing else makes anyone active. Beyond
        that, ``existing`` says what to do: "error" (raise, nothing is written), "skip" (leave
        it as it is), or "update" (name and sections take the item's values, lists the
        subscriber is not on are joined while the subscriber is active). Suppressed addresses
        are refused unless ``allow_suppressed`` (the suppression stays: only `resubscribe
        --force` lifts it). With ``dry_run`` everything is checked and counted, then rolled
        back. Returns counts (added, updated, skipped) and ``changes``: per changed
        subscriber, ``(address, line, [what changed, in words])``.
        """
        result: dict = {"added": 0, "updated": 0, "skipped": 0, "changes": []}
        with self.engine.connect() as conn, conn.begin() as transaction:
            list_ids = self._list_ids(conn)
            suppressed = self._suppressed_keys(conn, [i.email for i in items])
            stored = self._stored(conn, [email_key(i.email) for i in items])
            new: list[NewSubscriber] = []
            for item in items:
                key = email_key(item.email)
                if key in suppressed and not allow_suppressed:
                    raise SubscriberError(
                        f"{item.email} is on the suppression list ({suppressed[key]})",
                        "with the person's new consent, --force stores it and "
                        "`digest subscribers resubscribe --force` lifts the suppression",
                    )
                for m in item.all_memberships():
                    if m.list not in list_ids:
                        raise SubscriberError(f"{item.email}: no list named {m.list!r}")
                current = stored.get(key)
                if current is None:
                    new.append(item)
                    continue
                changes = self._merge(
                    conn,
                    current,
                    item,
                    suppressed.get(key),
                    list_ids,
                    now,
                    update_fields=existing == "update",
                )
                if changes:
                    result["updated"] += 1
                    result["changes"].append((current.email, item.line, changes))
                elif existing == "error":
                    raise SubscriberError(
                        f"{item.email} is already a subscriber",
                        "use `digest subscribers show` to see it",
                    )
                else:
                    result["skipped"] += 1
            self._insert(conn, new, list_ids, now)
            if dry_run:
                transaction.rollback()
        result["added"] = len(new)
        return result

    def _insert(
        self, conn: Connection, items: list[NewSubscriber], list_ids: dict[str, int], now: datetime
    ) -> None:
        if not items:
            return
        first = self._next_ids(conn, len(items))
        people, memberships, suppressions = [], [], []
        for offset, item in enumerate(items):
            sid = first + offset
            pending = item.status is SubscriberStatus.pending
            people.append(
                {
                    "id": sid,
                    "email": item.email.strip(),
                    "email_key": email_key(item.email),
                    "name": item.name,
                    "status": item.status.value,
                    "consent_source": item.consent_source,
                    # No consent yet for a pending sign-up: none is made up for it.
                    "consent_at": item.consent_at if pending else item.consent_at or now,
                    "consent_ip": item.consent_ip,
                    "created_at": now,
                    "updated_at": now,
                    "soft_bounces": 0.0,
                    "timezone": item.timezone,
                }
            )
            memberships += [
                _membership_row(sid, list_ids[m.list], m, now) for m in item.all_memberships()
            ]
            if item.status in (SubscriberStatus.bounced, SubscriberStatus.complained):
                # A file's bounced or complained person stays unmailed here as well.
                suppressions.append(
                    {
                        "address_hash": address_hash(item.email),
                        "email": item.email.strip(),
                        "reason": _REASONS[item.status],
                        "created_at": now,
                    }
                )
        for chunk in _chunks(people, 5000):
            conn.execute(s.insert(), chunk)
        for chunk in _chunks(memberships, 5000):
            conn.execute(sub.insert(), chunk)
        for row in suppressions:
            conn.execute(insert_ignore(self.dialect, sup, ["address_hash"]).values(**row))

    def _merge(
        self,
        conn: Connection,
        current: SubscriberRecord,
        item: NewSubscriber,
        suppressed: str | None,
        list_ids: dict[str, int],
        now: datetime,
        *,
        update_fields: bool,
    ) -> list[str]:
        """Apply an add or import row to a stored subscriber; what changed, in words."""
        changes: list[str] = []
        have = {m.list: m for m in current.memberships}
        activate = [
            m
            for m in item.all_memberships()
            if item.status is SubscriberStatus.active
            and m.state == "active"
            and policy.standing(current, m.list, suppressed) is policy.Standing.pending
            and policy.after(policy.Standing.pending, policy.Action.add) is policy.Standing.active
        ]
        for m in activate:
            self._upsert_membership(
                conn, current.id, list_ids[m.list], have.get(m.list), now, state="active"
            )
            # Stored now: the update below changes its sections, never inserts it again.
            have[m.list] = replace(have.get(m.list) or Membership(m.list), state="active")
        if activate:
            conn.execute(
                update(s)
                .where(s.c.id == current.id)
                .values(
                    status="active",
                    consent_source=item.consent_source,
                    consent_at=item.consent_at or now,
                    consent_ip=item.consent_ip,
                    updated_at=now,
                )
            )
            changes.append(f"{', '.join(m.list for m in activate)}: pending -> active")
        if not update_fields:
            return changes
        if item.name != current.name:
            conn.execute(
                update(s).where(s.c.id == current.id).values(name=item.name, updated_at=now)
            )
            changes.append(f"name: {current.name!r} -> {item.name!r}")
        # A zone the file names replaces the stored one; an empty cell leaves it.
        if item.timezone is not None and item.timezone != current.timezone:
            conn.execute(
                update(s).where(s.c.id == current.id).values(timezone=item.timezone, updated_at=now)
            )
            changes.append(f"timezone: {current.timezone or '-'} -> {item.timezone}")
        active = activate or current.status is SubscriberStatus.active
        for m in item.all_memberships():
            stored_m = have.get(m.list)
            if stored_m is None:
                if active and not suppressed:
                    conn.execute(
                        sub.insert().values(_membership_row(current.id, list_ids[m.list], m, now))
                    )
                    changes.append(
                        f"joined {m.list}" + ("" if m.state == "active" else f" ({m.state})")
                    )
                continue
            where = and_(sub.c.subscriber_id == current.id, sub.c.list_id == list_ids[m.list])
            if stored_m.sections != m.sections:
                # Sections follow the file; a state someone chose (unsubscribed) stays.
                conn.execute(
                    update(sub)
                    .where(where)
                    .values(sections=_sections_in(m.sections), updated_at=now)
                )
                changes.append(
                    f"{m.list} sections: {_sections_words(stored_m.sections)} -> "
                    f"{_sections_words(m.sections)}"
                )
            if item.frequency_given and stored_m.frequency != m.frequency:
                # A frequency is no consent change: the state stays what it was.
                conn.execute(update(sub).where(where).values(frequency=m.frequency, updated_at=now))
                changes.append(
                    f"{m.list} frequency: {stored_m.frequency or 'default'} -> "
                    f"{m.frequency or 'default'}"
                )
        return changes

    def _upsert_membership(
        self,
        conn: Connection,
        subscriber_id: int,
        list_id: int,
        stored: Membership | None,
        now: datetime,
        **values: Any,
    ) -> None:
        if stored is None:
            conn.execute(
                sub.insert().values(
                    subscriber_id=subscriber_id,
                    list_id=list_id,
                    created_at=now,
                    updated_at=now,
                    **{"paused": 0, "sections": None} | values,
                )
            )
        else:
            conn.execute(
                update(sub)
                .where(and_(sub.c.subscriber_id == subscriber_id, sub.c.list_id == list_id))
                .values(updated_at=now, **values)
            )

    def _stored(self, conn: Connection, keys: Sequence[str]) -> dict[str, SubscriberRecord]:
        found: dict[str, SubscriberRecord] = {}
        unique = list(dict.fromkeys(keys))
        for chunk in _chunks(unique):
            rows = conn.execute(select(s).where(s.c.email_key.in_(chunk))).all()
            members = self._memberships(conn, [r.id for r in rows])
            for r in rows:
                found[r.email_key] = _record(r, members.get(r.id, ()))
        return found

    # -- reading ----------------------------------------------------------------------------

    def _memberships(
        self, conn: Connection, ids: Sequence[int] | None
    ) -> dict[int, tuple[Membership, ...]]:
        query = (
            select(
                sub.c.subscriber_id,
                lst.c.name,
                sub.c.state,
                sub.c.paused,
                sub.c.sections,
                sub.c.frequency,
            )
            .join(lst, lst.c.id == sub.c.list_id)
            .order_by(lst.c.name)
        )
        out: dict[int, list[Membership]] = {}
        batches = [None] if ids is None else list(_chunks(list(ids)))
        for batch in batches:
            q = query if batch is None else query.where(sub.c.subscriber_id.in_(batch))
            for r in conn.execute(q):
                out.setdefault(r.subscriber_id, []).append(
                    Membership(
                        r.name, r.state, bool(r.paused), _sections_out(r.sections), r.frequency
                    )
                )
        return {k: tuple(v) for k, v in out.items()}

    def record(self, email: str) -> SubscriberRecord | None:
        with self.engine.connect() as conn:
            return self._stored(conn, [email_key(email)]).get(email_key(email))

    def record_by_id(self, subscriber_id: int) -> SubscriberRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(s).where(s.c.id == subscriber_id)).first()
            if row is None:
                return None
            return _record(row, self._memberships(conn, [row.id]).get(row.id, ()))

    def records(
        self, list_name: str | None = None, status: SubscriberStatus | None = None
    ) -> list[SubscriberRecord]:
        """Every subscriber (of a list), ordered by address, with all their memberships."""
        query = select(s).order_by(s.c.email_key)
        if status is not None:
            query = query.where(s.c.status == status.value)
        if list_name is not None:
            query = query.where(
                s.c.id.in_(
                    select(sub.c.subscriber_id)
                    .join(lst, lst.c.id == sub.c.list_id)
                    .where(lst.c.name == list_name)
                )
            )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            members = self._memberships(conn, None)
        return [_record(r, members.get(r.id, ())) for r in rows]

    def subscriber(self, email: str) -> Subscriber | None:
        """One subscriber with the lists it is on (sections: those of its first list)."""
        record = self.record(email)
        return None if record is None else _subscriber(record)

    def existing_subscriber(self, email: str) -> Subscriber:
        """``subscriber`` of an address just written: one deleted in between is an error."""
        found = self.subscriber(email)
        if found is None:
            raise SubscriberError(f"no subscriber {email}")
        return found

    def subscriptions(self, email: str) -> dict[str, frozenset[str] | None]:
        record = self.record(email)
        return {} if record is None else {m.list: m.sections for m in record.memberships}

    def subscribers(
        self, list_name: str | None = None, status: SubscriberStatus | None = None
    ) -> list[Subscriber]:
        """Subscribers ordered by address; with a list, only its members and their sections."""
        return [_subscriber(r, list_name) for r in self.records(list_name, status)]

    def recipients(self, list_name: str) -> list[Subscriber]:
        """Who gets the list's next edition: active, subscribed, not paused, not suppressed."""
        query = (
            select(s.c.id, s.c.email, s.c.name, sub.c.sections)
            .join(sub, sub.c.subscriber_id == s.c.id)
            .join(lst, lst.c.id == sub.c.list_id)
            .where(
                lst.c.name == list_name,
                s.c.status == "active",
                sub.c.state == "active",
                sub.c.paused == 0,
            )
            .order_by(s.c.email_key)
        )
        with self.engine.connect() as conn:
            # Suppressions are matched by hash: erased addresses keep nothing else.
            hashes = set(conn.scalars(select(sup.c.address_hash)))
            rows = conn.execute(query).all()
        return [
            Subscriber(
                id=r.id,
                email=r.email,
                name=r.name,
                lists=(list_name,),
                sections=_sections_out(r.sections),
            )
            for r in rows
            if address_hash(r.email) not in hashes
        ]

    def frequency_chosen(self, list_name: str, frequency: str) -> bool:
        """Whether a subscription of the list that may be mailed (active, not paused) chose
        ``frequency``: a series nobody reads is not built."""
        with self.engine.connect() as conn:
            found = conn.scalar(
                select(sub.c.subscriber_id)
                .join(lst, lst.c.id == sub.c.list_id)
                .join(s, s.c.id == sub.c.subscriber_id)
                .where(
                    lst.c.name == list_name,
                    sub.c.frequency == frequency,
                    sub.c.state == "active",
                    sub.c.paused == 0,
                    s.c.status == SubscriberStatus.active.value,
                )
                .limit(1)
            )
        return found is not None

    def deliverable(self, subscriber_id: int, list_name: str) -> bool:
        """Whether a subscriber may still be mailed on this list, checked at claim time."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(s.c.email, s.c.status, sub.c.state, sub.c.paused)
                .join(sub, sub.c.subscriber_id == s.c.id)
                .join(lst, lst.c.id == sub.c.list_id)
                .where(s.c.id == subscriber_id, lst.c.name == list_name)
            ).first()
            if row is None or row.status != "active" or row.state != "active" or row.paused:
                return False
            return (
                conn.execute(
                    select(sup.c.id).where(sup.c.address_hash == address_hash(row.email))
                ).first()
                is None
            )

    def suppressed_among(self, emails: Sequence[str]) -> dict[str, str]:
        """The suppressed ones of ``emails`` (by folded address) with their reasons."""
        with self.engine.connect() as conn:
            return self._suppressed_keys(conn, emails)

    def suppression(self, email: str) -> str | None:
        """The reason an address is suppressed, or None."""
        with self.engine.connect() as conn:
            return conn.scalar(
                select(sup.c.reason).where(sup.c.address_hash.in_(address_hashes(email))).limit(1)
            )

    # -- changing ---------------------------------------------------------------------------

    def set_status(self, email: str, status: SubscriberStatus, now: datetime) -> Subscriber:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(s)
                .where(s.c.email_key == email_key(email))
                .values(status=status.value, updated_at=now)
            )
        if result.rowcount == 0:
            raise SubscriberError(f"no subscriber {email}")
        return self.existing_subscriber(email)

    def unsubscribe_all(self, subscriber_id: int, now: datetime) -> None:
        """Every subscription unsubscribed, and the subscriber too (a bounced or complained
        status, which says more, stays)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(sub)
                .where(sub.c.subscriber_id == subscriber_id)
                .values(state="unsubscribed", updated_at=now)
            )
            conn.execute(
                update(s)
                .where(s.c.id == subscriber_id, s.c.status.in_(("active", "pending")))
                .values(status="unsubscribed", updated_at=now)
            )

    def set_membership(
        self,
        subscriber_id: int,
        list_name: str,
        now: datetime,
        *,
        state: str | None = None,
        paused: bool | None = None,
        sections: frozenset[str] | str | None = "keep",
        frequency: str | None = "keep",
        create: bool = False,
    ) -> bool:
        """Change one subscription; False when there is none (and ``create`` is off).

        Leaving the last list makes the subscriber ``unsubscribed`` overall. Nothing here
        makes anyone active: that is the consent policy's to decide (``resubscribe``, a
        confirmation, an operator's add), never a side effect of a preference.
        """
        values: dict = {"updated_at": now}
        if state is not None:
            values["state"] = state
        if paused is not None:
            values["paused"] = int(paused)
        if sections != "keep":
            values["sections"] = _sections_in(sections)  # type: ignore[arg-type]
        if frequency != "keep":
            values["frequency"] = frequency  # None: the list's own schedule
        with self.engine.begin() as conn:
            list_id = conn.scalar(select(lst.c.id).where(lst.c.name == list_name))
            if list_id is None:
                return False
            where = and_(sub.c.subscriber_id == subscriber_id, sub.c.list_id == list_id)
            if conn.execute(update(sub).where(where).values(**values)).rowcount == 0:
                if not create:
                    return False
                conn.execute(
                    sub.insert().values(
                        subscriber_id=subscriber_id,
                        list_id=list_id,
                        created_at=now,
                        **{"state": "active", "paused": 0, "sections": None} | values,
                    )
                )
            self._settle_status(conn, subscriber_id, now)
        return True

    def set_timezone(self, subscriber_id: int, zone: str | None, now: datetime) -> None:
        """Set the person's own time zone (None: each list's)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(s).where(s.c.id == subscriber_id).values(timezone=zone, updated_at=now)
            )

    def _settle_status(self, conn: Connection, subscriber_id: int, now: datetime) -> None:
        status = conn.scalar(select(s.c.status).where(s.c.id == subscriber_id))
        subscribed = conn.scalar(
            select(func.count()).where(
                sub.c.subscriber_id == subscriber_id, sub.c.state == "active"
            )
        )
        if status != "active" or subscribed:
            return
        new = "unsubscribed"
        conn.execute(update(s).where(s.c.id == subscriber_id).values(status=new, updated_at=now))

    def resubscribe(
        self,
        email: str,
        now: datetime,
        list_name: str | None = None,
        *,
        lift_suppression: bool = False,
    ) -> Subscriber:
        """Make a subscriber active again (on one list, or every list they left), unpaused."""
        record = self.record(email)
        if record is None:
            raise SubscriberError(f"no subscriber {email}")
        reason = self.suppression(record.email)
        if reason and not lift_suppression:
            raise SubscriberError(
                f"{record.email} is on the suppression list ({reason})",
                "pass --force to lift it, with the person's consent",
            )
        with self.engine.begin() as conn:
            if reason:
                conn.execute(delete(sup).where(sup.c.address_hash.in_(address_hashes(email))))
            target = sub.c.subscriber_id == record.id
            if list_name is not None:
                if record.membership(list_name) is None:
                    raise SubscriberError(
                        f"{record.email} is not on the list {list_name!r}",
                        "add the list with `digest subscribers prefs`",
                    )
                target = and_(
                    target,
                    sub.c.list_id
                    == select(lst.c.id).where(lst.c.name == list_name).scalar_subquery(),
                )
            conn.execute(update(sub).where(target).values(state="active", paused=0, updated_at=now))
            conn.execute(
                update(s)
                .where(s.c.id == record.id)
                .values(status="active", soft_bounces=0.0, updated_at=now)
            )
        return self.existing_subscriber(email)

    def remove_subscriber(self, email: str, now: datetime, *, erase: bool = False) -> None:
        """Delete a subscriber; with ``erase``, keep only a hashed suppression entry."""
        with self.engine.begin() as conn:
            row = conn.execute(select(s.c.id).where(s.c.email_key == email_key(email))).first()
            if row is None:
                raise SubscriberError(f"no subscriber {email}")
            self._raise_floor(conn, row.id)
            conn.execute(delete(schema.bounces).where(schema.bounces.c.subscriber_id == row.id))
            conn.execute(delete(s).where(s.c.id == row.id))
            if erase:
                h = address_hash(email)
                conn.execute(delete(sup).where(sup.c.address_hash == h))
                conn.execute(
                    sup.insert().values(address_hash=h, email=None, reason="erased", created_at=now)
                )

    def suppress(self, email: str, reason: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert_ignore(self.dialect, sup, ["address_hash"]).values(
                    address_hash=address_hash(email),
                    email=email.strip(),
                    reason=reason,
                    created_at=now,
                )
            )

    def _suppressed_keys(self, conn: Connection, emails: Sequence[str]) -> dict[str, str]:
        by_hash = {h: email_key(e) for e in emails for h in address_hashes(e)}
        found: dict[str, str] = {}
        for chunk in _chunks(list(by_hash)):
            for r in conn.execute(
                select(sup.c.address_hash, sup.c.reason).where(sup.c.address_hash.in_(chunk))
            ):
                found[by_hash[r.address_hash]] = r.reason
        return found


def _membership_row(subscriber_id: int, list_id: int, m: Membership, now: datetime) -> dict:
    return {
        "subscriber_id": subscriber_id,
        "list_id": list_id,
        "state": m.state,
        "paused": int(m.paused),
        "sections": _sections_in(m.sections),
        "frequency": m.frequency,
        "created_at": now,
        "updated_at": now,
    }


def _record(row: Row[*tuple[Any, ...]], memberships: tuple[Membership, ...]) -> SubscriberRecord:
    return SubscriberRecord(
        id=row.id,
        email=row.email,
        name=row.name,
        status=SubscriberStatus(row.status),
        consent_source=row.consent_source,
        consent_at=row.consent_at,
        consent_ip=row.consent_ip,
        created_at=row.created_at,
        soft_bounces=row.soft_bounces or 0.0,
        memberships=memberships,
        timezone=row.timezone,
    )


def _subscriber(record: SubscriberRecord, list_name: str | None = None) -> Subscriber:
    chosen = (
        record.membership(list_name)
        if list_name
        else (record.memberships[0] if record.memberships else None)
    )
    return Subscriber(
        id=record.id,
        email=record.email,
        name=record.name,
        status=record.status,
        lists=(list_name,) if list_name else record.lists,
        sections=chosen.sections if chosen else None,
    )


def _sections_words(value: frozenset[str] | None) -> str:
    return "all" if value is None else ";".join(sorted(value))


__all__ = ["LIST_STATES", "SubscriberQueries"]
