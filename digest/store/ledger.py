"""The delivery ledger: one row per (edition, subscriber), never two.

States and when each is committed (see ``digest.models.DeliveryState``):
queued -> sending (before MAIL FROM) -> in_data (just before DATA) -> sent | deferred |
failed | unknown; skipped when the subscriber left before their turn.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine, func, select, update

from digest.models import DeliveryState
from digest.store import schema
from digest.store._sql import insert_ignore

d = schema.deliveries


class LedgerQueries:
    engine: Engine
    dialect: str

    def enqueue(self, edition_id: int, subscriber_ids: Iterable[int], now: datetime) -> int:
        """Create the missing ledger rows of an edition; returns how many were new."""
        rows = [{"edition_id": edition_id, "subscriber_id": sid, "state": "queued",
                 "attempts": 0, "created_at": now, "updated_at": now} for sid in subscriber_ids]
        if not rows:
            return 0
        before = self.counts(edition_id)
        with self.engine.begin() as conn:
            stmt = insert_ignore(self.dialect, d, ["edition_id", "subscriber_id"])
            for i in range(0, len(rows), 1000):
                conn.execute(stmt, rows[i:i + 1000])
        return sum(self.counts(edition_id).values()) - sum(before.values())

    def recover(self, edition_id: int, now: datetime) -> dict[str, int]:
        """After a crash: `sending` rows were never handed over, so they go back to the queue;
        `in_data` rows may have been delivered, so they become `unknown`."""
        with self.engine.begin() as conn:
            requeued = conn.execute(update(d).where(d.c.edition_id == edition_id,
                                                    d.c.state == "sending")
                                    .values(state="queued", updated_at=now)).rowcount
            unknown = conn.execute(update(d).where(d.c.edition_id == edition_id,
                                                   d.c.state == "in_data")
                                   .values(state="unknown", updated_at=now,
                                           last_reply="interrupted after DATA began")).rowcount
        return {"requeued": requeued, "unknown": unknown}

    def claim(self, edition_id: int, limit: int, now: datetime, *,
              resend_unknown: bool = False) -> list[tuple[int, int]]:
        """Take up to ``limit`` due rows and mark them `sending`; returns (row id, subscriber)."""
        due = ["queued", "deferred"] + (["unknown"] if resend_unknown else [])
        with self.engine.begin() as conn:
            rows = conn.execute(select(d.c.id, d.c.subscriber_id)
                                .where(d.c.edition_id == edition_id, d.c.state.in_(due))
                                .order_by(d.c.id).limit(limit)).all()
            if rows:
                conn.execute(update(d).where(d.c.id.in_([r.id for r in rows]),
                                             d.c.state.in_(due))
                             .values(state="sending", attempts=d.c.attempts + 1,
                                     updated_at=now))
        return [(r.id, r.subscriber_id) for r in rows]

    def mark(self, delivery_id: int, state: DeliveryState, now: datetime, *,
             code: int | None = None, reply: str | None = None,
             message_id: str | None = None) -> None:
        values: dict = {"state": state.value, "updated_at": now}
        if code is not None or reply is not None:
            values.update(last_code=code, last_reply=reply)
        if message_id is not None:
            values["message_id"] = message_id
        if state is DeliveryState.sent:
            values["sent_at"] = now
        with self.engine.begin() as conn:
            conn.execute(update(d).where(d.c.id == delivery_id).values(**values))

    def counts(self, edition_id: int) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(d.c.state, func.count()).where(d.c.edition_id == edition_id)
                                .group_by(d.c.state)).all()
        return {state: n for state, n in rows}

    def latest_errors(self, edition_id: int, limit: int = 5) -> list[tuple[int, str, int, str]]:
        """(subscriber id, state, code, reply) of the latest rows that did not end `sent`."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(d.c.subscriber_id, d.c.state, d.c.last_code, d.c.last_reply)
                                .where(d.c.edition_id == edition_id,
                                       d.c.state.in_(["deferred", "failed", "unknown"]))
                                .order_by(d.c.updated_at.desc()).limit(limit)).all()
        return [tuple(r) for r in rows]
