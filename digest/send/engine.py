"""The ledger-driven send engine: which rows of an edition go out, and what became of each.

The delivery ledger (``digest.store.ledger``) is the single source of truth; the engine sees
the store only through ``digest.store.protocols.SendStore`` (the ledger, the workers' leases,
the suppressions). A run:

1. recovers what a crashed run left: ``sending`` rows go back to the queue (nothing was handed
   over), ``in_data`` rows become ``unknown`` (the relay may have the message). A caller
   holding the list's run lock (``exclusive``, SQLite) knows no live run owns such rows; a
   worker sharing the edition takes over only the rows of workers whose lease expired;
2. claims due rows in batches, stamped with this run's id (``claim`` commits ``sending``
   before MAIL FROM, and re-reads each subscriber so an unsubscribe or a suppression made
   since the edition was created counts), and hands them to the workers: per relay, as many
   as it has connections, each holding one long-lived transport session;
3. builds each message, commits ``in_data`` once the relay is ready for the body, then the
   outcome. Outcomes are buffered and committed together with the next ``in_data`` write: a
   crash before that leaves the row ``in_data``, so ``unknown``, never sent twice. The
   ``in_data`` marks of the sessions that reach DATA in the same turn of the event loop share
   one transaction (a group commit) over one connection held for the run; no body goes
   before the commit holding its mark has returned.

A deferred row (4xx) is committed ``deferred`` at once; this run retries it with exponential
backoff while ``RetryPolicy.budget`` seconds have not passed since its first refusal, then
leaves it to the next run. A run never re-claims a row it already handled (the run id), so an
``unknown`` row is resent (``resend_unknown``) at most once per run.

Several workers (processes, on one machine or many, sharing a PostgreSQL database) may send
one edition at once: each registers with a lease that its heartbeat renews
(``digest.store.workers``), claims batches of rows (``SELECT ... FOR UPDATE SKIP LOCKED``
then one UPDATE that takes only rows still due, so two claims never take the same row and
never wait for each other), and takes its share of each relay's rate limit, recomputed as
workers come and go. A worker whose lease has expired is dead to the others: its rows are
recovered as after a crash, and its own writes are fenced off by the claim's (run id,
attempt). A worker with nothing left to claim waits while others still hold rows, and takes
over the rows of any whose lease expires, so the edition completes even if a worker is
killed.

A ``SendError`` (the relay cannot be used) or ``max_failures`` consecutive failed messages
end that relay's sessions; the message in hand goes back to the shared queue for the other
sessions (a relay may accept fewer connections than configured, and other relays may be
fine). When no session is left the run stops: rows claimed but not handed over go back to
``queued`` and ``SendReport.stopped`` says why.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from digest.errors import ComposeError, SendError
from digest.models import DeliveryResult, DeliveryState, OutgoingMessage, Subscriber
from digest.send.report import SendReport
from digest.store.protocols import Claimed, LeaseLost, Outcome, SendStore

# A recipient's message (None: nothing to send them), or an awaitable of it (a message whose
# signature is being made in another process).
Build = Callable[[Subscriber], OutgoingMessage | Awaitable[OutgoingMessage | None] | None]
Progress = Callable[[int, int], None]
# Called when the relay is ready for the body; an awaitable it returns is awaited before the
# first byte of the body goes (the engine's group commit of `in_data`).
BeforeData = Callable[[], Awaitable[None] | None]


class TransportSession(Protocol):
    """One open channel to a destination (an SMTP connection, a Maildir), used sequentially."""

    async def deliver(self, message: OutgoingMessage, *, before_data: BeforeData) -> DeliveryResult:
        """Hand ``message.raw`` over, calling ``before_data()`` (and awaiting what it returns,
        if anything) just before the body goes.

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


@dataclass(frozen=True)
class RetryPolicy:
    """How a run retries a deferred (4xx) message before leaving it to the next run."""

    budget: float = 60.0  # seconds after the first refusal; 0: never retry within the run
    backoff: float = 2.0  # the first wait, doubled at each further attempt


def _label(transport: Transport) -> str:
    return getattr(transport, "label", transport.name)


class _Run:
    """The shared state of one run: the claim queue, the retry schedule, buffered writes."""

    def __init__(
        self,
        store: SendStore,
        edition_id: int,
        list_name: str,
        build: Build,
        *,
        now: Callable[[], datetime],
        resend_unknown: bool,
        batch: int,
        retry: RetryPolicy,
        max_failures: int,
        suppress_after: int,
        on_progress: Progress | None,
        report: SendReport,
        exclusive: bool = True,
        lease: float = 60.0,
    ):
        self.store, self.edition_id, self.list_name = store, edition_id, list_name
        self.build, self.now, self.resend_unknown = build, now, resend_unknown
        self.batch, self.retry, self.on_progress = max(1, batch), retry, on_progress
        self.max_failures, self.suppress_after = max_failures, suppress_after
        self.report = report
        self.exclusive, self.lease = exclusive, lease
        self.run_id = uuid.uuid4().hex
        self.total = 0
        self.pending: deque[Claimed] = deque()
        self.exhausted = False
        self.retries: list[tuple[float, int, int]] = []  # (due, row id, subscriber id) heap
        self.first_deferred: dict[int, tuple[float, int]] = {}  # row -> (when, attempts)
        self.buffer: list[Outcome] = []
        # Shared editions fence every write by the claim; a run holding the list's lock
        # alone needs no fence and keeps the plain, faster writes.
        self.writer = store.ledger_writer(None if exclusive else self.run_id)
        self.lost: set[int] = set()  # rows whose `in_data` mark found the claim gone
        self.group: asyncio.Future | None = None  # the pending group commit
        self.flushed_at = time.monotonic()
        self.workers = 0
        self.failures: dict[str, int] = {}  # relay -> consecutive failed messages
        self.broken: dict[str, str] = {}  # relay -> why all its sessions must stop
        self.reasons: dict[str, str] = {}  # relay -> why a session of it ended

    # -- what to send next ----------------------------------------------------------------

    async def next_row(self, relay: str) -> Claimed | None:
        """The next row for a session of ``relay``, or None when there is nothing left."""
        while self.report.stopped is None and relay not in self.broken:
            if self.retries and self.retries[0][0] <= time.monotonic():
                _, row_id, _ = heapq.heappop(self.retries)
                self.flush()  # its `deferred` may still be in the buffer
                claimed = self.store.claim(
                    self.edition_id, self.list_name, 1, self.now(), self.run_id, row_ids=[row_id]
                )
                if claimed:
                    self.report.retries += 1
                    return claimed[0]
                continue
            if self.pending:
                return self.pending.popleft()
            if not self.exhausted:
                # A worker never claims without a lease: one taken over stops here.
                if not self.exclusive and not self.store.renew_worker(self.run_id, self.lease):
                    self.lease_lost()
                    return None
                # claim() is synchronous, so two workers can never claim at the same moment.
                self.flush()
                rows = self.store.claim(
                    self.edition_id,
                    self.list_name,
                    self.batch,
                    self.now(),
                    self.run_id,
                    resend_unknown=self.resend_unknown,
                )
                self.exhausted = not rows
                self.pending.extend(rows)
                continue
            if not self.retries:
                return None
            # Only retries are left: wait for the earliest (checking now and then for a stop).
            await asyncio.sleep(min(max(self.retries[0][0] - time.monotonic(), 0), 0.5))
        return None

    def lease_lost(self) -> None:
        self.report.stopped = self.report.stopped or (
            f"this worker's lease ({self.lease:g} s) expired before its heartbeat renewed it; "
            "other workers take over its rows"
        )

    def has_work(self) -> bool:
        return bool(self.pending or self.retries or not self.exhausted)

    # -- one message ----------------------------------------------------------------------

    async def process(self, session: TransportSession, relay: str, row: Claimed) -> None:
        if row.subscriber is None:
            # Unsubscribed, paused or suppressed since the edition was created.
            self.finish(row, DeliveryResult(row.subscriber_id, DeliveryState.skipped), relay)
            return
        try:
            built = self.build(row.subscriber)
            message = await built if inspect.isawaitable(built) else built
        except ComposeError as exc:
            # This recipient's message cannot be built (e.g. an address no header can carry):
            # a permanent failure of that row alone, never of the run.
            self.finish(
                row, DeliveryResult(row.subscriber_id, DeliveryState.failed, reply=str(exc)), relay
            )
            return
        if message is None:
            self.finish(row, DeliveryResult(row.subscriber_id, DeliveryState.skipped), relay)
            return

        def before_data() -> Awaitable[None]:
            # Committed (with the buffered outcomes) before the first byte of the body.
            self.buffer.append(
                Outcome(
                    row.row_id,
                    DeliveryState.in_data,
                    message_id=message.message_id,
                    relay=relay,
                    attempt=row.attempt,
                )
            )
            return self.committed() if self.exclusive else self._still_ours(row)

        try:
            result = await session.deliver(message, before_data=before_data)
        except LeaseLost:
            # Another worker took this row over (our lease expired): not ours to write.
            self.report.lost_leases += 1
            return
        except SendError:
            # The transport's word: this message was not handed over. Another session, or
            # the next run, takes it.
            self.pending.appendleft(row)
            raise
        self.finish(row, result, relay, len(message.raw))

    async def _still_ours(self, row: Claimed) -> None:
        await self.committed()
        if row.row_id in self.lost:
            self.lost.discard(row.row_id)
            raise LeaseLost(f"row {row.row_id} was taken over by another worker")

    def finish(self, row: Claimed, result: DeliveryResult, relay: str, size: int = 0) -> None:
        state = result.state
        self.buffer.append(
            Outcome(
                row.row_id,
                state,
                result.code,
                result.reply or None,
                relay=relay if state is not DeliveryState.skipped else None,
                attempt=row.attempt,
            )
        )
        self._count_failure(relay, result)
        if state is DeliveryState.deferred and self._schedule_retry(row):
            self._maybe_flush()
            return
        self.first_deferred.pop(row.row_id, None)
        if state is DeliveryState.failed and _no_such_user(result) and row.subscriber:
            self._bounced(row.subscriber_id, row.subscriber.email)
        self.report.tally(state, size)
        self._maybe_flush()
        if self.on_progress is not None:
            self.on_progress(self.report.done, self.total)

    def _schedule_retry(self, row: Claimed) -> bool:
        first, attempts = self.first_deferred.get(row.row_id, (time.monotonic(), 0))
        due = time.monotonic() + self.retry.backoff * 2**attempts
        if self.retry.budget <= 0 or due - first > self.retry.budget:
            return False
        self.first_deferred[row.row_id] = (first, attempts + 1)
        heapq.heappush(self.retries, (due, row.row_id, row.subscriber_id))
        return True

    def _count_failure(self, relay: str, result: DeliveryResult) -> None:
        if result.state is DeliveryState.sent:
            self.failures[relay] = 0
        elif (
            result.state is not DeliveryState.skipped
            and result.extra.get("phase")
            # "No such user" speaks of the address, not of the relay.
            and not _no_such_user(result)
        ):
            self.failures[relay] = self.failures.get(relay, 0) + 1
        if self.max_failures and self.failures.get(relay, 0) >= self.max_failures:
            self.broken.setdefault(
                relay,
                f"relay {relay} failed {self.max_failures} messages "
                f"in a row (last: {result.code or ''} "
                f"{result.reply})".replace("  ", " "),
            )

    def _bounced(self, subscriber_id: int, email: str) -> None:
        self.flush()  # the count below reads the ledger
        if self.suppress_after and self.store.hard_bounces(subscriber_id) >= self.suppress_after:
            self.store.suppress(email, "hard-bounce", self.now())
            self.report.suppressed += 1

    # -- the ledger -------------------------------------------------------------------------

    def _maybe_flush(self) -> None:
        if len(self.buffer) >= self.batch or time.monotonic() - self.flushed_at > 0.5:
            self.flush()

    def committed(self) -> Awaitable[None]:
        """Done once everything buffered so far is committed: a group commit.

        The commit runs at the next turn of the event loop, so the sessions that reach DATA
        in the same turn share one transaction (and the outcomes buffered since the last
        one ride along); each session's body waits for it all the same.
        """
        if self.group is None:
            loop = asyncio.get_running_loop()
            self.group = loop.create_future()
            loop.call_soon(self._commit_group, self.group)
        # Shielded: a session cancelled while it waits must not cancel the others' commit.
        return asyncio.shield(self.group)

    def _commit_group(self, group: asyncio.Future) -> None:
        self.group = None
        try:
            self.flush()
        except Exception as exc:
            group.set_exception(exc)
            group.exception()  # the waiters get it; never "exception was never retrieved"
        else:
            group.set_result(None)

    def flush(self) -> None:
        if self.buffer:
            self.lost |= self.writer.write(self.buffer, self.now())
            self.buffer = []
        self.flushed_at = time.monotonic()

    def worker_done(self, relay: str, reason: str | None) -> None:
        """A session ended; the run stops once no session is left and work remains."""
        self.workers -= 1
        # A relay may take fewer connections than configured: its other sessions go on.
        reason = self.broken.get(relay) or reason
        if reason:
            self.reasons[relay] = reason
        if self.workers == 0 and self.has_work() and self.reasons:
            self.report.stopped = self.report.stopped or "; ".join(self.reasons.values())

    def settle(self) -> None:
        """Commit what is buffered; rows claimed but never handed over go back to the queue."""
        try:
            self.flush()
        finally:
            self.writer.close()
        self.store.release(self.run_id, self.now())
        self.pending.clear()


async def _send_due(run: _Run, transports: Sequence[Transport], lease: float) -> None:
    """Send what can be claimed; then, while other workers hold rows of the edition, wait
    and take over the rows of any whose lease expires."""
    store, edition_id = run.store, run.edition_id
    while True:
        run.exhausted = False
        # Rows whose moment has not come (a reader's zone later than this run) wait.
        run.total = store.due_count(edition_id, resend_unknown=run.resend_unknown, now=run.now())
        if run.total:
            await _run_workers(run, transports)
        # Outcomes still buffered are rows the others would wait for.
        run.flush()
        while True:
            if run.exclusive or run.report.stopped is not None:
                return
            if not store.in_flight(edition_id, other_than=run.run_id):
                # Rows the others released or left deferred when they finished.
                if not store.claimable(
                    edition_id, run.run_id, resend_unknown=run.resend_unknown, now=run.now()
                ):
                    return
                break
            await asyncio.sleep(min(1.0, lease / 4))
            taken = store.recover(edition_id, run.now(), exclusive=False)
            run.report.taken_over += taken["requeued"] + taken["unknown"]
            if store.claimable(
                edition_id, run.run_id, resend_unknown=run.resend_unknown, now=run.now()
            ):
                break


def _no_such_user(result: DeliveryResult) -> bool:
    # RFC 3463 5.1.x: a bad destination address (no such mailbox, bad syntax, ...).
    return result.code is not None and 500 <= result.code < 600 and result.reply.startswith("5.1.")


async def _worker(run: _Run, transport: Transport) -> None:
    relay = _label(transport)
    try:
        async with transport.session() as session:
            while (row := await run.next_row(relay)) is not None:
                await run.process(session, relay, row)
    except SendError as exc:
        run.worker_done(relay, exc.message)
    else:
        run.worker_done(relay, None)


async def _run_workers(run: _Run, transports: Sequence[Transport]) -> None:
    try:
        async with asyncio.TaskGroup() as group:
            for transport in transports:
                # No more sessions than rows: each one is a connection to open and close.
                for _ in range(max(1, min(transport.concurrency, run.total))):
                    run.workers += 1
                    group.create_task(_worker(run, transport))
    except BaseExceptionGroup as group_error:
        # A worker failed unexpectedly; the group has already cancelled and awaited the rest.
        raise group_error.exceptions[0] from None


def _apply_shares(run: _Run, transports: Sequence[Transport]) -> None:
    """Give each relay's limiter this worker's share: 1 / the live workers using the relay."""
    live = run.store.live_workers()
    for transport in transports:
        limiter = getattr(transport, "limiter", None)
        if limiter is not None:
            label = _label(transport)
            limiter.set_share(1 / max(1, sum(label in w["relays"] for w in live)))


async def _heartbeat(run: _Run, transports: Sequence[Transport], lease: float) -> None:
    """Renew the run's lease every quarter of it; follow the rate shares every second."""
    renewed = time.monotonic()
    while True:
        await asyncio.sleep(min(1.0, lease / 4))
        try:
            if time.monotonic() - renewed >= lease / 4:
                if not run.store.renew_worker(run.run_id, lease):
                    run.lease_lost()
                    return
                renewed = time.monotonic()
            _apply_shares(run, transports)
        except Exception as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            run.report.stopped = run.report.stopped or f"the database stopped answering: {reason}"
            return


async def send_edition(
    store: SendStore,
    edition_id: int,
    list_name: str,
    build: Build,
    transport: Transport | Sequence[Transport],
    *,
    now: Callable[[], datetime],
    resend_unknown: bool = False,
    batch: int = 100,
    retry: RetryPolicy = RetryPolicy(),
    max_failures: int = 20,
    suppress_after: int = 1,
    on_progress: Progress | None = None,
    exclusive: bool = True,
    lease: float = 60.0,
    report: SendReport | None = None,
) -> SendReport:
    """Deliver the due rows of an edition's ledger through the transports; see the module doc.

    The caller has already enqueued the edition's rows (``store.enqueue``). ``exclusive``:
    the caller holds the list's run lock, so every row left in flight is a crashed run's;
    otherwise other workers may share the edition, each holding its claims for ``lease``
    seconds past its last heartbeat. Safe to run again: rows that ended sent, failed or
    skipped are never touched twice. The run's counts go into ``report`` (a new one if None),
    which is returned.
    """
    transports = list(transport) if isinstance(transport, Sequence) else [transport]
    started = time.monotonic()
    report = SendReport() if report is None else report
    run = _Run(
        store,
        edition_id,
        list_name,
        build,
        now=now,
        resend_unknown=resend_unknown,
        batch=batch,
        retry=retry,
        max_failures=max_failures,
        suppress_after=suppress_after,
        on_progress=on_progress,
        report=report,
        exclusive=exclusive,
        lease=lease,
    )
    # Registered before the first claim: from here on the rows this run claims are leased.
    store.register_worker(run.run_id, edition_id, [_label(t) for t in transports], lease, now())
    heartbeat = asyncio.create_task(_heartbeat(run, transports, lease))
    try:
        recovered = store.recover(edition_id, now(), exclusive=exclusive)
        report.requeued_on_start = recovered["requeued"]
        report.unknown_on_start = recovered["unknown"]
        _apply_shares(run, transports)
        await _send_due(run, transports, lease)
    finally:
        heartbeat.cancel()
        # Also on cancellation or an unexpected error: the ledger must not keep rows that
        # this run claimed but never handed over.
        try:
            run.settle()
        finally:
            store.unregister_worker(run.run_id)
    report.elapsed = time.monotonic() - started
    report.rate = report.sent / report.elapsed if report.elapsed > 0 else 0.0
    report.counts = store.counts(edition_id)
    return report
