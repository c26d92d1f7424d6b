"""The ledger-driven send engine: which rows of an edition go out, and what became of each.

The delivery ledger (``digest.store.ledger``) is the single source of truth. A run:

1. recovers what a crashed run left: ``sending`` rows go back to the queue (nothing was handed
   over), ``in_data`` rows become ``unknown`` (the relay may have the message);
2. claims due rows in small batches (``claim`` commits ``sending`` before MAIL FROM) and hands
   them to ``transport.concurrency`` workers, each holding one long-lived transport session;
3. re-checks, per row, that the subscriber may still be mailed, builds the message, commits
   ``in_data`` just before the body is handed over, then commits the outcome.

A row that ends ``deferred`` (or ``unknown`` when ``resend_unknown`` is on) is due again for
``claim``, yet must wait for the next run. Such rows are *held* by the run: they stay in a
non-due state (``sending`` after a temporary refusal, ``in_data`` after a lost final reply,
with the reply already recorded) and get their final state when the run ends. Should the run
die instead, ``recover`` turns them into exactly what they were: queued (nothing was accepted)
or unknown (maybe delivered).

A ``SendError`` (the relay cannot be used at all) ends the session that met it; the message
in hand goes back to the shared queue for the sessions still working (a relay may accept
fewer connections than configured). When no session is left the run stops: rows claimed but
not handed over go back to ``queued`` and ``SendReport.stopped`` says why.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from digest.errors import ComposeError, SendError
from digest.models import DeliveryResult, DeliveryState, OutgoingMessage
from digest.store import Store

Build = Callable[[int], OutgoingMessage | None]


class TransportSession(Protocol):
    """One open channel to a destination (an SMTP connection, a Maildir), used sequentially."""

    async def deliver(self, message: OutgoingMessage, *,
                      before_data: Callable[[], None]) -> DeliveryResult:
        """Hand ``message.raw`` over, calling ``before_data()`` just before the body goes.

        Per-message problems are classified into the result, never raised. ``SendError``
        means the destination cannot be used at all, and that this message was not handed
        over.
        """
        ...


class Transport(Protocol):
    """Where messages go. ``concurrency`` is how many sessions the engine opens at once."""

    name: str
    concurrency: int

    def session(self) -> AbstractAsyncContextManager[TransportSession]:
        """Open a session; entering it raises ``SendError`` if the destination is unusable."""
        ...


@dataclass
class SendReport:
    """What one run of an edition did, and where the edition stands after it."""

    edition_id: int
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    requeued_on_start: int = 0
    unknown_on_start: int = 0
    elapsed: float = 0.0
    rate: float = 0.0  # messages accepted by the transport per second of the run
    stopped: str | None = None  # why the run stopped early (relay unusable), else None
    counts: dict[str, int] = field(default_factory=dict)  # ledger states after the run

    def tally(self, state: DeliveryState) -> None:
        if state is DeliveryState.sent:
            self.sent += 1
        elif state is DeliveryState.deferred:
            self.deferred += 1
        elif state is DeliveryState.failed:
            self.failed += 1
        elif state is DeliveryState.unknown:
            self.unknown += 1
        elif state is DeliveryState.skipped:
            self.skipped += 1

    @property
    def done(self) -> int:
        return self.sent + self.deferred + self.failed + self.unknown + self.skipped


@dataclass
class _Held:
    row_id: int
    state: DeliveryState
    code: int | None
    reply: str


class _Run:
    """The shared state of one run: the claim queue, rows in flight, held outcomes."""

    def __init__(self, store: Store, edition_id: int, list_name: str, build: Build,
                 now: Callable[[], datetime], resend_unknown: bool, batch: int,
                 on_progress: Callable[[int, int], None] | None, report: SendReport):
        self.store, self.edition_id, self.list_name = store, edition_id, list_name
        self.build, self.now, self.resend_unknown = build, now, resend_unknown
        self.batch, self.on_progress, self.report = max(1, batch), on_progress, report
        self.total = 0
        self.pending: deque[tuple[int, int]] = deque()
        self.exhausted = False
        self.workers = 0  # workers still running
        # Rows claimed and not yet in DATA: the ones to put back if the run stops.
        self.not_handed_over: set[int] = set()
        self.held: list[_Held] = []

    def next_row(self) -> tuple[int, int] | None:
        """The next claimed row, claiming another batch when the queue runs dry."""
        if self.report.stopped is not None:
            return None
        if not self.pending and not self.exhausted:
            # claim() is synchronous, so two workers can never claim at the same moment.
            rows = self.store.claim(self.edition_id, self.batch, self.now(),
                                    resend_unknown=self.resend_unknown)
            self.exhausted = not rows
            self.pending.extend(rows)
            self.not_handed_over.update(row_id for row_id, _ in rows)
        return self.pending.popleft() if self.pending else None

    async def process(self, session: TransportSession, row_id: int, subscriber_id: int) -> None:
        try:
            message = self._message_for(subscriber_id)
        except ComposeError as exc:
            # This recipient's message cannot be built (e.g. an address no header can carry):
            # a permanent failure of that row alone, never of the run.
            self._finish(row_id, DeliveryResult(subscriber_id, DeliveryState.failed,
                                                reply=str(exc)))
            return
        if message is None:
            self._finish(row_id, DeliveryResult(subscriber_id, DeliveryState.skipped))
            return

        def before_data() -> None:
            self.store.mark(row_id, DeliveryState.in_data, self.now(),
                            message_id=message.message_id)
            self.not_handed_over.discard(row_id)

        try:
            result = await session.deliver(message, before_data=before_data)
        except SendError:
            # The transport's word: this message was not handed over. Another worker, or the
            # next run, takes it.
            self.not_handed_over.add(row_id)
            self.pending.appendleft((row_id, subscriber_id))
            raise
        self._finish(row_id, result)

    def _message_for(self, subscriber_id: int) -> OutgoingMessage | None:
        # Unsubscribes and suppressions count from the moment the row's turn comes.
        if not self.store.deliverable(subscriber_id, self.list_name):
            return None
        return self.build(subscriber_id)

    def _finish(self, row_id: int, result: DeliveryResult) -> None:
        state, code, reply = result.state, result.code, result.reply
        self.not_handed_over.discard(row_id)
        if state is DeliveryState.deferred:
            # Keep the row out of this run's claims; recover() would requeue it.
            self.store.mark(row_id, DeliveryState.sending, self.now(), code=code, reply=reply)
            self.held.append(_Held(row_id, state, code, reply))
        elif state is DeliveryState.unknown and self.resend_unknown:
            # Keep it `in_data`: recover() would make it unknown, never resend it blindly.
            self.store.mark(row_id, DeliveryState.in_data, self.now(), code=code, reply=reply)
            self.held.append(_Held(row_id, state, code, reply))
        else:
            self.store.mark(row_id, state, self.now(), code=code, reply=reply)
        self.report.tally(state)
        if self.on_progress is not None:
            self.on_progress(self.report.done, self.total)

    def worker_failed(self, reason: str) -> None:
        """A session found the relay unusable; the run stops once no session is left."""
        self.workers -= 1
        # A relay may accept fewer connections than configured: the others carry on.
        if self.workers == 0 and (self.pending or not self.exhausted):
            self.report.stopped = self.report.stopped or reason

    def settle(self) -> None:
        """Give held rows their final state and put rows never handed over back in the queue."""
        now = self.now()
        for held in self.held:
            self.store.mark(held.row_id, held.state, now, code=held.code, reply=held.reply)
        self.held.clear()
        for row_id in sorted(self.not_handed_over):
            self.store.mark(row_id, DeliveryState.queued, now)
        self.not_handed_over.clear()
        self.pending.clear()


async def _worker(run: _Run, transport: Transport) -> None:
    try:
        async with transport.session() as session:
            while (row := run.next_row()) is not None:
                await run.process(session, *row)
    except SendError as exc:
        run.worker_failed(exc.message)
    else:
        run.workers -= 1


async def _run_workers(run: _Run, transport: Transport) -> None:
    try:
        # No more sessions than rows: each one is a connection to open and close.
        run.workers = max(1, min(transport.concurrency, run.total))
        async with asyncio.TaskGroup() as group:
            for _ in range(run.workers):
                group.create_task(_worker(run, transport))
    except BaseExceptionGroup as group_error:
        # A worker failed unexpectedly; the group has already cancelled and awaited the rest.
        raise group_error.exceptions[0] from None


def _due(counts: dict[str, int], resend_unknown: bool) -> int:
    states = ["queued", "deferred"] + (["unknown"] if resend_unknown else [])
    return sum(counts.get(state, 0) for state in states)


async def send_edition(store: Store, edition_id: int, list_name: str, build: Build,
                       transport: Transport, *, now: Callable[[], datetime],
                       resend_unknown: bool = False, batch: int = 100,
                       on_progress: Callable[[int, int], None] | None = None) -> SendReport:
    """Deliver the due rows of an edition's ledger through ``transport``; see the module doc.

    The caller has already enqueued the edition's rows (``store.enqueue``). Safe to run
    again: rows that ended sent, failed or skipped are never touched twice.
    """
    started = time.monotonic()
    report = SendReport(edition_id=edition_id)
    recovered = store.recover(edition_id, now())
    report.requeued_on_start = recovered["requeued"]
    report.unknown_on_start = recovered["unknown"]
    run = _Run(store, edition_id, list_name, build, now, resend_unknown, batch, on_progress,
               report)
    run.total = _due(store.counts(edition_id), resend_unknown)
    try:
        if run.total:
            await _run_workers(run, transport)
    finally:
        # Also on cancellation or an unexpected error: the ledger must not keep rows that
        # this run claimed but never handed over.
        run.settle()
    report.elapsed = time.monotonic() - started
    report.rate = report.sent / report.elapsed if report.elapsed > 0 else 0.0
    report.counts = store.counts(edition_id)
    return report
