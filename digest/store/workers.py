"""Send workers and their leases: which `digest send` processes share the editions right now.

A worker registers before its first claim and renews its lease with a heartbeat; its claimed
rows are its own while the lease holds. A worker whose lease has expired is dead to the
others, whatever it is doing: its `sending` rows go back to the queue, its `in_data` rows
become `unknown` (``LedgerQueries.recover``), and its own later writes no longer match the
rows (each claim is fenced by run id and attempt number). Times come from the database
server's clock, the one clock every machine sharing the database sees.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine, Select, delete, insert, select, update

from digest.store import schema
from digest.store._sql import db_clock

w = schema.send_workers


class WorkerQueries:
    engine: Engine
    dialect: str

    def register_worker(
        self, run_id: str, edition_id: int, relays: Iterable[str], lease: float, now: datetime
    ) -> None:
        """Record a worker of ``edition_id`` holding a lease of ``lease`` seconds."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(w).values(
                    run_id=run_id,
                    edition_id=edition_id,
                    host=socket.gethostname()[:255],
                    pid=os.getpid(),
                    relays=" ".join(relays),
                    started_at=now,
                    expires_at=db_clock(self.dialect) + lease,
                )
            )

    def renew_worker(self, run_id: str, lease: float) -> bool:
        """Move the lease ``lease`` seconds ahead; False when it had already expired (the
        worker's rows may belong to others by now: it must stop)."""
        clock = db_clock(self.dialect)
        with self.engine.begin() as conn:
            return (
                conn.execute(
                    update(w)
                    .where(w.c.run_id == run_id, w.c.expires_at > clock)
                    .values(expires_at=clock + lease)
                ).rowcount
                == 1
            )

    def unregister_worker(self, run_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(w).where(w.c.run_id == run_id))

    def live_runs(self) -> Select[tuple[str]]:
        """A subquery of the run ids whose lease holds now."""
        return select(w.c.run_id).where(w.c.expires_at > db_clock(self.dialect))

    def live_workers(self, edition_id: int | None = None) -> list[dict]:
        """The workers whose lease holds (of one edition, or all), oldest first."""
        query = (
            select(w.c.run_id, w.c.edition_id, w.c.host, w.c.pid, w.c.relays, w.c.started_at)
            .where(w.c.expires_at > db_clock(self.dialect))
            .order_by(w.c.started_at, w.c.run_id)
        )
        if edition_id is not None:
            query = query.where(w.c.edition_id == edition_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [{**row._mapping, "relays": row.relays.split()} for row in rows]

    def reap_workers(self) -> int:
        """Forget workers whose lease expired (their rows are recovered separately)."""
        with self.engine.begin() as conn:
            return conn.execute(delete(w).where(w.c.expires_at <= db_clock(self.dialect))).rowcount
