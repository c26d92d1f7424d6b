"""Sending: today's edition of a list, by one worker or several, and where it stands."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from digest.config import ListConfig, Settings
from digest.errors import SelectionError
from digest.exits import ExitCode
from digest.models import Edition, OutgoingMessage, Subscriber
from digest.pipeline.checks import passes_check
from digest.pipeline.context import Context, utcnow
from digest.pipeline.editions import Composer, current_edition
from digest.pipeline.feeds import failing_feeds
from digest.selection import edition_key
from digest.send import (MaildirTransport, RetryPolicy, RunLocked, SmtpTransport, Transport,
                         run_lock, send_edition)
from digest.send.dkim import signer_for
from digest.send.lock import lock_file, lock_holder
from digest.send.relays import smtp_transports


@dataclass
class SendSummary:
    list: str
    edition: str | None
    status: str  # complete, skipped, incomplete, failed, stopped, dry-run
    articles: dict[str, int] = field(default_factory=dict)
    recipients: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    already_sent: int = 0
    variants: int = 0
    bytes: int = 0
    elapsed: float = 0.0
    rate: float = 0.0
    stopped: str | None = None
    transport: str = ""
    message: str = ""
    limit: float | None = None  # the configured rate (messages/s, all relays), None: no limit
    retries: int = 0  # deferred messages tried again within the run
    suppressed: int = 0  # addresses suppressed after "no such user"
    requeued_on_start: int = 0  # left `sending` by an interrupted run: back in the queue
    unknown_on_start: int = 0  # left `in_data` by an interrupted run: now unknown
    taken_over: int = 0  # rows of workers whose lease expired, recovered during the run
    lost_leases: int = 0  # rows this run's workers lost to others after their lease expired
    workers: list[dict] = field(default_factory=list)  # per worker process (--workers N)
    warnings: list[str] = field(default_factory=list)
    feed_warnings: list[str] = field(default_factory=list)  # feeds failing for days
    notes: list[str] = field(default_factory=list)  # what trimming left out to fit the budget
    findings: list[dict] = field(default_factory=list)  # digest check's, errors first

    @property
    def exit_code(self) -> ExitCode:
        return {"stopped": ExitCode.STOPPED, "incomplete": ExitCode.INCOMPLETE,
                "failed": ExitCode.FAILED, "check-failed": ExitCode.CHECK,
                "locked": ExitCode.LOCKED}.get(self.status, ExitCode.OK)

    def as_dict(self) -> dict:
        return asdict(self)


def make_transport(settings: Settings) -> Transport:
    relay = settings.relay
    if relay is None:
        return MaildirTransport(settings.outbox)
    return SmtpTransport(relay, connections=settings.smtp_connections,
                         timeout=settings.smtp_timeout)


def make_transports(ctx: Context, now: Callable[[], datetime]) -> list[Transport]:
    """Every configured relay (each paced on its own), else the Maildir outbox."""
    return smtp_transports(ctx.settings, ctx.store, now) or [MaildirTransport(ctx.settings.outbox)]


async def send(ctx: Context, list_name: str | None, *, now: Callable[[], datetime] = utcnow,
               dry_run: bool = False, resend_unknown: bool | None = None,
               transport: Transport | None = None,
               on_progress: Callable[[int, int], None] | None = None,
               workers: int | None = None) -> SendSummary:
    """Send today's edition of a list; safe to run again and to resume after a crash.

    On SQLite one run per list at a time: while another holds the list's lock this one sends
    nothing and says so (status "locked"), and one worker runs whatever ``workers`` asks. On
    PostgreSQL runs of a list cooperate, on one machine or many: the first creates the
    edition and its ledger (the others wait for it), then every worker sends its share.
    ``workers`` None takes DIGEST_SEND_WORKERS; ``resend_unknown`` None takes
    DIGEST_SEND_RESEND_UNKNOWN.
    """
    lst = ctx.newsletter.get_list(list_name)
    settings = ctx.settings
    if resend_unknown is None:
        resend_unknown = settings.send_resend_unknown
    workers = settings.send_workers if workers is None else workers
    options = dict(now=now, dry_run=dry_run, resend_unknown=resend_unknown,
                   transport=transport, on_progress=on_progress)
    if dry_run:
        return await _send(ctx, lst, shared=False, workers=1, **options)
    if ctx.store.dialect == "postgresql":
        return await _send(ctx, lst, shared=True, workers=workers, **options)
    warnings = [] if workers <= 1 else [
        f"{workers} workers asked, one runs: SQLite lets one process write at a time; "
        "several workers need PostgreSQL (DIGEST_DATABASE_URL=postgresql://...)"]
    path = lock_file(settings.run_dir, settings.database_url, lst.name)
    try:
        with run_lock(path, f"list {lst.name}"):
            summary = await _send(ctx, lst, shared=False, workers=1, **options)
    except RunLocked as exc:
        summary = SendSummary(list=lst.name, edition=None, status="locked", message=str(exc))
    summary.warnings = warnings + summary.warnings
    return summary


async def _send(ctx: Context, lst: ListConfig, *, now: Callable[[], datetime], dry_run: bool,
                resend_unknown: bool, transport: Transport | None,
                on_progress: Callable[[int, int], None] | None, shared: bool,
                workers: int) -> SendSummary:
    ctx.settings.require_secret()
    started = now()
    # Creating the edition and its ledger is one machine's job: on PostgreSQL the others
    # wait for it here, then all send.
    with ctx.store.list_lock(lst.name, wait=True):
        prepared = _prepare(ctx, lst, started, dry_run=dry_run)
    if isinstance(prepared, SendSummary):
        return prepared
    summary, edition, composer = prepared
    if dry_run:
        return _dry_run(summary, composer, ctx.store.recipient_stream(lst.name))

    before = ctx.store.counts(edition.id)
    summary.already_sent = before.get("sent", 0)
    transports = [transport] if transport is not None else make_transports(ctx, now)
    summary.transport = transports[0].name
    limits = [getattr(t, "limiter", None) for t in transports]
    if all(limiter is not None and limiter.limit for limiter in limits):
        summary.limit = sum(limiter.limit for limiter in limits)
    if workers > 1 and transport is None:
        from digest.pipeline.workers import run_workers

        report = await run_workers(ctx, lst, edition, started, workers,
                                   resend_unknown=resend_unknown, on_progress=on_progress)
        summary.workers, summary.warnings = report.workers, report.problems
    else:
        report = await deliver(ctx, lst, edition, composer, transports, now=now,
                               resend_unknown=resend_unknown, on_progress=on_progress,
                               exclusive=not shared)
    summary.retries, summary.suppressed = report.retries, report.suppressed
    summary.requeued_on_start = report.requeued_on_start
    summary.unknown_on_start = report.unknown_on_start
    summary.taken_over, summary.lost_leases = report.taken_over, report.lost_leases
    counts = report.counts
    summary.recipients = sum(counts.values())
    summary.sent, summary.deferred, summary.failed = report.sent, report.deferred, report.failed
    summary.unknown, summary.skipped = report.unknown, report.skipped
    summary.elapsed, summary.rate, summary.stopped = report.elapsed, report.rate, report.stopped
    summary.variants = composer.variants
    pending = sum(counts.get(s, 0) for s in ("queued", "sending", "in_data", "deferred"))
    if report.stopped:
        summary.status = "stopped"
    elif pending or report.unknown or (counts.get("unknown", 0) and resend_unknown):
        # Unknown outcomes of this run are not "delivered": cron should hear of them.
        summary.status = "incomplete"
    elif counts.get("failed", 0) and report.failed:
        summary.status = "failed"
    if not pending and not report.stopped:
        ctx.store.complete_edition(edition.id, now())
    return summary


def _prepare(ctx: Context, lst: ListConfig, started: datetime, *, dry_run: bool
             ) -> SendSummary | tuple[SendSummary, Edition, Composer]:
    """Today's edition, checked, with its ledger filled; or the summary that ends the run."""
    feed_warnings = failing_feeds(ctx, lst, started)
    edition = current_edition(ctx, lst, started, create=not dry_run)
    if edition is None:
        return SendSummary(list=lst.name, edition=edition_key(started, lst.tz), status="skipped",
                           feed_warnings=feed_warnings,
                           message="nothing new since the previous edition; nothing sent")
    summary = SendSummary(list=lst.name, edition=edition.key, status="complete",
                          articles={s.slug: len(s.articles) for s in edition.sections})
    summary.feed_warnings = feed_warnings
    composer = Composer(ctx, edition, lst, started)
    if not passes_check(summary, composer):
        return summary
    if not dry_run and ctx.store.edition_status(edition.id) == "open":
        # Streamed from the subscriptions into the ledger (on PostgreSQL by the server); each
        # message is built from the subscriber as the claim reads it, so no run holds the
        # whole list in memory. The edition turns `sending` in the same transaction.
        ctx.store.enqueue_list(edition.id, lst.name, started)
    return summary, edition, composer


async def deliver(ctx: Context, lst: ListConfig, edition: Edition, composer: Composer,
                  transports: list[Transport], *, now: Callable[[], datetime],
                  resend_unknown: bool, on_progress: Callable[[int, int], None] | None,
                  exclusive: bool):
    """One worker's part of an edition: its due rows through the transports (the ledger is
    filled already)."""
    settings = ctx.settings
    signer = signer_for(settings.dkim_key_file, selector=settings.dkim_selector,
                        domain=settings.dkim_domain,
                        sender_domain=lst.sender_address.rpartition("@")[2])

    def build(subscriber: Subscriber) -> OutgoingMessage | None:
        # The subscriber as the ledger's claim read it: unsubscribes and section changes
        # made since the edition was created count. DKIM signs the exact bytes sent.
        message = composer.message(subscriber)
        return message if message is None or signer is None else signer.sign_message(message)

    return await send_edition(
        ctx.store, edition.id, lst.name, build, transports, now=now,
        resend_unknown=resend_unknown, on_progress=on_progress, batch=settings.send_batch,
        retry=RetryPolicy(settings.send_retry_budget, settings.send_retry_backoff),
        max_failures=settings.smtp_max_failures,
        suppress_after=settings.suppress_after_bounces, exclusive=exclusive,
        lease=settings.send_lease)


def send_status(ctx: Context, list_name: str | None, key: str | None = None, *,
                errors: int = 10) -> dict:
    """Where an edition stands (the list's latest when ``key`` is None): its ledger counts by
    state, its latest problems, whether a run holds the list's lock (SQLite) and the live
    send workers (any engine; on PostgreSQL from every machine)."""
    lst = ctx.newsletter.get_list(list_name)
    record = ctx.store.edition_record(lst.name, key)
    if record is None:
        raise SelectionError(f"list {lst.name}: no edition {key}" if key else
                             f"list {lst.name} has no edition yet", "run `digest send` first")
    counts = ctx.store.counts(record["id"])
    running = lock_holder(lock_file(ctx.settings.run_dir, ctx.settings.database_url, lst.name))
    return {"list": lst.name, "edition": record["key"], "status": record["status"],
            "created_at": record["created_at"], "completed_at": record["completed_at"],
            "last_activity": ctx.store.last_activity(record["id"]),
            "total": sum(counts.values()), "counts": counts, "running": running,
            "workers": ctx.store.live_workers(record["id"]),
            "errors": ctx.store.edition_errors(record["id"], errors)}


def _dry_run(summary: SendSummary, composer: Composer, recipients) -> SendSummary:
    started = time.perf_counter()
    for subscriber in recipients:
        message = composer.message(subscriber)
        summary.recipients += 1
        if message is None:
            summary.skipped += 1
        else:
            summary.bytes += len(message.raw)
    summary.elapsed = time.perf_counter() - started
    summary.variants = composer.variants
    summary.status = "dry-run"
    summary.message = "dry run: every message composed, nothing sent, the ledger untouched"
    return summary
