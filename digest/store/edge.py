"""Queries of the public edge: queued sign-ups, double opt-in confirmations, processed bounces.

A sign-up row is what the form stores, whatever the address; the server takes the queued
rows outside the requests and mails each one's confirm link. A confirmation row is what a
confirm link's token names, so each link works once. A bounce row records one processed
report under a key (a hash of the report and its recipient), so processing the same mailbox
twice counts nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, update

from digest.audience import policy
from digest.models import SubscriberStatus
from digest.store import schema
from digest.store._sql import address_hash, address_hashes, email_key, insert_ignore, inserted_id
from digest.store.subscribers import _sections_in, _sections_out

s, sub, lst, sup = schema.subscribers, schema.subscriptions, schema.lists, schema.suppressions
signups = schema.signups


@dataclass(frozen=True)
class QueuedSignup:
    id: int
    list_name: str
    email: str
    name: str
    sections: frozenset[str] | None
    client: str | None
    mailbox: str
    requested_at: datetime
    attempts: int
    frequency: str | None = None  # chosen on the form; None: the list's own schedule


_MARKS = {
    SubscriberStatus.bounced: policy.Action.bounce,
    SubscriberStatus.complained: policy.Action.complaint,
}


def _standing(status: str, suppressed: bool) -> policy.Standing:
    # A confirmation is about a list the subscriber asked for: their overall status decides.
    if suppressed or status in ("bounced", "complained"):
        return policy.Standing.suppressed
    return policy.Standing(status)


class EdgeQueries:
    engine: Engine
    dialect: str

    if TYPE_CHECKING:  # SubscriberQueries's, the other half of the Store

        def suppression(self, email: str) -> str | None: ...

        def _next_ids(self, conn: Connection, count: int) -> int: ...

    # -- the sign-up queue ------------------------------------------------------------------

    def queue_signup(
        self,
        email: str,
        name: str,
        list_name: str,
        sections: frozenset[str] | None,
        client: str | None,
        mailbox: str,
        now: datetime,
        *,
        client_limit: int,
        window_seconds: int,
        frequency: str | None = None,
    ) -> bool:
        """Queue a sign-up; False (and nothing stored) when ``client`` queued ``client_limit``
        of them within ``window_seconds``. The same statements run whatever the address."""
        since = now - timedelta(seconds=window_seconds)
        same_client = signups.c.client.is_(None) if client is None else signups.c.client == client
        with self.engine.begin() as conn:
            recent = (
                conn.scalar(
                    select(func.count())
                    .select_from(signups)
                    .where(same_client, signups.c.requested_at > since)
                )
                or 0
            )
            if recent >= client_limit:
                return False
            conn.execute(
                signups.insert().values(
                    list_name=list_name,
                    email=email,
                    name=name,
                    sections=_sections_in(sections),
                    frequency=frequency,
                    client=client,
                    mailbox=mailbox,
                    requested_at=now,
                    state="queued",
                    attempts=0,
                )
            )
        return True

    def claim_signups(
        self, now: datetime, *, limit: int = 100, stale_seconds: int = 600
    ) -> list[QueuedSignup]:
        """Take queued sign-ups (and ones a stopped server left ``sending``) for mailing."""
        waiting = or_(
            signups.c.state == "queued",
            and_(
                signups.c.state == "sending",
                signups.c.claimed_at < now - timedelta(seconds=stale_seconds),
            ),
        )
        with self.engine.begin() as conn:
            ids = conn.scalars(
                select(signups.c.id).where(waiting).order_by(signups.c.id).limit(limit)
            ).all()
            # Claimed one by one under the same condition: another server draining the same
            # queue gets a row count of 0 for a row it lost.
            taken = [
                i
                for i in ids
                if conn.execute(
                    update(signups)
                    .where(signups.c.id == i, waiting)
                    .values(state="sending", claimed_at=now, attempts=signups.c.attempts + 1)
                ).rowcount
            ]
            rows = (
                conn.execute(
                    select(signups).where(signups.c.id.in_(taken)).order_by(signups.c.id)
                ).all()
                if taken
                else []
            )
        return [
            QueuedSignup(
                r.id,
                r.list_name,
                r.email,
                r.name,
                _sections_out(r.sections),
                r.client,
                r.mailbox,
                r.requested_at,
                r.attempts,
                r.frequency,
            )
            for r in rows
        ]

    def mailbox_mailed(self, mailbox: str, since: datetime) -> int:
        """Confirmation mails sent to ``mailbox`` since ``since``."""
        with self.engine.connect() as conn:
            return (
                conn.scalar(
                    select(func.count())
                    .select_from(signups)
                    .where(
                        signups.c.mailbox == mailbox,
                        signups.c.state == "sent",
                        signups.c.claimed_at >= since,
                    )
                )
                or 0
            )

    def finish_signup(self, signup_id: int, state: str) -> None:
        """Close a sign-up (sent, dropped or failed), keeping only what the limits count."""
        with self.engine.begin() as conn:
            conn.execute(
                update(signups)
                .where(signups.c.id == signup_id)
                .values(state=state, email="", name="", sections=None)
            )

    def release_signup(self, signup_id: int) -> None:
        """Put a sign-up back in the queue (the relay could not take it now)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(signups)
                .where(signups.c.id == signup_id, signups.c.state == "sending")
                .values(state="queued")
            )

    def prune_signups(self, before: datetime) -> None:
        """Forget closed sign-ups older than ``before`` (the limits look back less far)."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(signups).where(
                    signups.c.requested_at < before, signups.c.state.notin_(("queued", "sending"))
                )
            )

    # -- double opt-in ----------------------------------------------------------------------

    def request_confirmation(
        self,
        email: str,
        name: str,
        list_name: str,
        sections: frozenset[str] | None,
        now: datetime,
        ip: str | None,
        *,
        quiet_seconds: int = 600,
        frequency: str | None = None,
    ) -> tuple[int, int] | None:
        """Record a sign-up to confirm: ``(confirmation id, subscriber id)``, or None when the
        address is suppressed or had a confirmation mailed within ``quiet_seconds`` (so the
        form cannot be used to flood someone's inbox). A new address is stored ``pending``,
        with a ``pending`` subscription to the list (so an export carries the list it asked
        for); a stored subscriber's standing does not change (the consent policy's sign-up)."""
        if self.suppression(email):
            return None
        key = email_key(email)
        with self.engine.begin() as conn:
            list_id = conn.scalar(select(lst.c.id).where(lst.c.name == list_name))
            sid = conn.scalar(select(s.c.id).where(s.c.email_key == key))
            if sid is None:
                sid = self._next_ids(conn, 1)
                conn.execute(
                    s.insert().values(
                        id=sid,
                        email=email,
                        email_key=key,
                        name=name,
                        status="pending",
                        consent_source=None,
                        created_at=now,
                        updated_at=now,
                        soft_bounces=0.0,
                    )
                )
            if (
                conn.scalar(
                    select(func.count()).where(sub.c.subscriber_id == sid, sub.c.list_id == list_id)
                )
                == 0
            ):
                conn.execute(
                    sub.insert().values(
                        subscriber_id=sid,
                        list_id=list_id,
                        state="pending",
                        paused=0,
                        sections=_sections_in(sections),
                        frequency=frequency,
                        created_at=now,
                        updated_at=now,
                    )
                )
            c = schema.confirmations
            last = conn.scalar(
                select(func.max(c.c.requested_at)).where(
                    c.c.subscriber_id == sid, c.c.list_id == list_id
                )
            )
            if last is not None and (now - last).total_seconds() < quiet_seconds:
                return None
            cid = inserted_id(
                conn.execute(
                    c.insert().values(
                        subscriber_id=sid,
                        list_id=list_id,
                        sections=_sections_in(sections),
                        frequency=frequency,
                        requested_at=now,
                        requested_ip=ip,
                    )
                )
            )
        return cid, sid

    def cancel_confirmation(self, confirmation_id: int) -> None:
        c = schema.confirmations
        with self.engine.begin() as conn:
            conn.execute(c.delete().where(c.c.id == confirmation_id, c.c.used_at.is_(None)))

    def confirmation_open(
        self, confirmation_id: int, list_name: str, now: datetime, *, max_age_seconds: int
    ) -> bool:
        """Whether a confirm link still works (unused, fresh, its subscriber still there)."""
        c = schema.confirmations
        with self.engine.connect() as conn:
            row = conn.execute(
                select(c.c.used_at, c.c.requested_at, lst.c.name)
                .join(lst, lst.c.id == c.c.list_id)
                .where(c.c.id == confirmation_id)
            ).first()
        return (
            row is not None
            and row.name == list_name
            and row.used_at is None
            and (now - row.requested_at).total_seconds() <= max_age_seconds
        )

    def confirm(
        self,
        confirmation_id: int,
        list_name: str,
        now: datetime,
        ip: str | None,
        *,
        max_age_seconds: int,
    ) -> int | None:
        """Use a confirmation once: the subscription becomes active and the consent is
        recorded. Returns the subscriber id, or None if unknown, used, stale, or refused by
        the consent policy (a suppressed address)."""
        c = schema.confirmations
        with self.engine.begin() as conn:
            row = conn.execute(
                select(c, lst.c.name, s.c.email, s.c.status)
                .join(lst, lst.c.id == c.c.list_id)
                .join(s, s.c.id == c.c.subscriber_id)
                .where(c.c.id == confirmation_id)
            ).first()
            if (
                row is None
                or row.name != list_name
                or row.used_at is not None
                or (now - row.requested_at).total_seconds() > max_age_seconds
            ):
                return None
            suppressed = (
                conn.execute(
                    select(sup.c.reason).where(sup.c.address_hash.in_(address_hashes(row.email)))
                ).first()
                is not None
            )
            if policy.after(_standing(row.status, suppressed), policy.Action.confirm) is None:
                return None
            conn.execute(update(c).where(c.c.id == row.id).values(used_at=now))
            # Later requests for the same list are void once one is confirmed.
            conn.execute(
                update(c)
                .where(
                    c.c.subscriber_id == row.subscriber_id,
                    c.c.list_id == row.list_id,
                    c.c.used_at.is_(None),
                )
                .values(used_at=now)
            )
            where = and_(sub.c.subscriber_id == row.subscriber_id, sub.c.list_id == row.list_id)
            values = {
                "state": "active",
                "paused": 0,
                "sections": row.sections,
                "frequency": row.frequency,
                "updated_at": now,
            }
            if conn.execute(update(sub).where(where).values(**values)).rowcount == 0:
                conn.execute(
                    sub.insert().values(
                        subscriber_id=row.subscriber_id,
                        list_id=row.list_id,
                        created_at=now,
                        **values,
                    )
                )
            conn.execute(
                update(s)
                .where(s.c.id == row.subscriber_id)
                .values(
                    status="active",
                    consent_source="web:double-opt-in",
                    consent_at=now,
                    consent_ip=ip,
                    updated_at=now,
                )
            )
        return row.subscriber_id

    # -- bounces ----------------------------------------------------------------------------

    def record_bounce(
        self,
        key: str,
        subscriber_id: int | None,
        edition_id: int | None,
        kind: str,
        status: str | None,
        diagnostic: str,
        now: datetime,
    ) -> bool:
        """Store one processed report; False if this very report was processed before."""
        b = schema.bounces
        with self.engine.begin() as conn:
            if conn.execute(select(b.c.id).where(b.c.key == key)).first() is not None:
                return False
            conn.execute(
                b.insert().values(
                    key=key,
                    subscriber_id=subscriber_id,
                    edition_id=edition_id,
                    kind=kind,
                    status=status,
                    diagnostic=diagnostic[:500],
                    received_at=now,
                )
            )
        return True

    def bounce_seen(self, key: str) -> bool:
        """Whether this very report was processed before (a dry run's question)."""
        b = schema.bounces
        with self.engine.connect() as conn:
            return conn.execute(select(b.c.id).where(b.c.key == key)).first() is not None

    def delivery_by_message_id(
        self, message_id: str, subscriber_ids: Sequence[int]
    ) -> tuple[int, int] | None:
        """(edition id, subscriber id) of the delivery to one of ``subscriber_ids`` that was
        sent with ``message_id``, else None. Looked up by subscriber (indexed), never by the
        Message-ID alone: a report proves a delivery only to someone it names."""
        d = schema.deliveries
        if not subscriber_ids:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(d.c.edition_id, d.c.subscriber_id)
                .where(d.c.subscriber_id.in_(list(subscriber_ids)), d.c.message_id == message_id)
                .limit(1)
            ).first()
        return (row.edition_id, row.subscriber_id) if row else None

    def delivered_since(self, subscriber_id: int, since: datetime) -> bool:
        """Whether the ledger shows a message handed to the relay for this subscriber since
        ``since`` (sent, or ``unknown``: the relay may have taken it)."""
        d = schema.deliveries
        with self.engine.connect() as conn:
            row = conn.execute(
                select(d.c.id)
                .where(
                    d.c.subscriber_id == subscriber_id,
                    or_(
                        d.c.sent_at >= since,
                        and_(d.c.state == "unknown", d.c.updated_at >= since),
                    ),
                )
                .limit(1)
            ).first()
        return row is not None

    def add_soft_bounce(self, subscriber_id: int, now: datetime, half_life_days: float) -> float:
        """Add one soft bounce to a score that halves every ``half_life_days``; the new score."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(s.c.soft_bounces, s.c.soft_bounce_at).where(s.c.id == subscriber_id)
            ).first()
            if row is None:
                return 0.0
            score = row.soft_bounces or 0.0
            if row.soft_bounce_at is not None:
                days = max(0.0, (now - row.soft_bounce_at).total_seconds() / 86400)
                score *= 0.5 ** (days / half_life_days)
            score += 1.0
            conn.execute(
                update(s)
                .where(s.c.id == subscriber_id)
                .values(soft_bounces=score, soft_bounce_at=now)
            )
        return score

    def mark(
        self, subscriber_id: int, status: SubscriberStatus, reason: str | None, now: datetime
    ) -> str | None:
        """Set a subscriber's status after a bounce or complaint, suppressing the address
        when ``reason`` is given. Returns the address, or None for an unknown subscriber."""
        action = _MARKS.get(status)
        if (
            action is None
            or policy.TABLE[policy.Standing.active][action] is not policy.Standing.suppressed
        ):
            raise ValueError(f"a bounce or complaint cannot make a subscriber {status.value}")
        with self.engine.begin() as conn:
            email = conn.scalar(select(s.c.email).where(s.c.id == subscriber_id))
            if email is None:
                return None
            conn.execute(
                update(s).where(s.c.id == subscriber_id).values(status=status.value, updated_at=now)
            )
            if reason:
                conn.execute(
                    insert_ignore(self.dialect, sup, ["address_hash"]).values(
                        address_hash=address_hash(email), email=email, reason=reason, created_at=now
                    )
                )
        return email

    def subscriber_id_for(self, email: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.scalar(select(s.c.id).where(s.c.email_key == email_key(email)))
