"""Sending: today's edition of a list, by one worker or several, and where it stands."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime

from digest import periods
from digest.config import ListConfig
from digest.errors import SelectionError
from digest.models import PENDING_STATES, DeliveryState, Edition, EditionState, Subscriber
from digest.pipeline.checks import check_edition
from digest.pipeline.context import Context, utcnow
from digest.pipeline.delivery import deliver, make_transports
from digest.pipeline.editions import Composer, current_edition, readers_of
from digest.pipeline.feeds import failing_feeds
from digest.pipeline.sections import stale_section_warning
from digest.pipeline.workers import run_workers
from digest.send import RunLocked, SendReport, SendStatus, Transport, run_lock
from digest.send.lock import lock_file, lock_holder


async def send(
    ctx: Context,
    list_name: str | None,
    *,
    now: Callable[[], datetime] = utcnow,
    dry_run: bool = False,
    resend_unknown: bool | None = None,
    transport: Transport | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    frequency: str | None = None,
) -> SendReport:
    """Send today's edition of a list (of the series of ``frequency``: ``series_to_send``
    names them; None: the list's own); safe to run again and to resume after a crash.

    On SQLite one run per list at a time: while another holds the list's lock this one sends
    nothing and says so (status ``locked``), and one worker runs whatever ``workers`` asks. On
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

    async def run(*, shared: bool, workers: int) -> SendReport:
        return await _send(
            ctx,
            lst,
            now=now,
            dry_run=dry_run,
            resend_unknown=resend_unknown,
            transport=transport,
            on_progress=on_progress,
            shared=shared,
            workers=workers,
            frequency=frequency,
        )

    stale = stale_section_warning(ctx, lst.name)
    warnings = [stale] if stale else []
    if dry_run:
        summary = await run(shared=False, workers=1)
    elif ctx.store.dialect == "postgresql":
        summary = await run(shared=True, workers=workers)
    else:
        if workers > 1:
            warnings.append(
                f"{workers} workers asked, one runs: SQLite lets one process write at a time; "
                "several workers need PostgreSQL (DIGEST_DATABASE_URL=postgresql://...)"
            )
        path = lock_file(settings.run_dir, settings.database_url, lst.name)
        try:
            with run_lock(path, f"list {lst.name}"):
                summary = await run(shared=False, workers=1)
        except RunLocked as exc:
            summary = SendReport(list=lst.name, status=SendStatus.locked, message=str(exc))
    summary.warnings = warnings + summary.warnings
    return summary


async def _send(
    ctx: Context,
    lst: ListConfig,
    *,
    now: Callable[[], datetime],
    dry_run: bool,
    resend_unknown: bool,
    transport: Transport | None,
    on_progress: Callable[[int, int], None] | None,
    shared: bool,
    workers: int,
    frequency: str | None = None,
) -> SendReport:
    ctx.settings.require_secret()
    started = now()
    waiting = _not_due(ctx, lst, started, frequency)
    if waiting is not None:
        return waiting
    # Creating the edition and its ledger is one machine's job: on PostgreSQL the others
    # wait for it here, then all send.
    with ctx.store.list_lock(lst.name, wait=True):
        prepared = _prepare(ctx, lst, started, dry_run=dry_run, frequency=frequency)
    if isinstance(prepared, SendReport):
        return prepared
    summary, edition, composer = prepared
    if dry_run:
        would = _would_send(ctx, lst, edition, summary, resend_unknown, frequency)
        return _dry_run(summary, composer, would)

    before = ctx.store.counts(edition.stored_id)
    summary.already_sent = before.get(DeliveryState.sent, 0)
    transports = [transport] if transport is not None else make_transports(ctx, now)
    summary.transport = transports[0].name
    limiters = [getattr(t, "limiter", None) for t in transports]
    rates = [limiter.limit for limiter in limiters if limiter is not None]
    if len(rates) == len(limiters) and all(rates):  # every relay paced
        summary.limit = sum(rates)
    # The workers (or this process) count straight into the summary.
    if workers > 1 and transport is None:
        await run_workers(
            ctx,
            lst,
            edition,
            started,
            workers,
            resend_unknown=resend_unknown,
            on_progress=on_progress,
            report=summary,
        )
    else:
        await deliver(
            ctx,
            lst,
            edition,
            composer,
            transports,
            now=now,
            resend_unknown=resend_unknown,
            on_progress=on_progress,
            exclusive=not shared,
            report=summary,
        )
    counts = summary.counts
    summary.recipients = sum(counts.values())
    summary.variants = composer.variants
    pending = sum(counts.get(s, 0) for s in PENDING_STATES)
    if summary.stopped:
        summary.status = SendStatus.stopped
    elif pending or summary.unknown or (counts.get(DeliveryState.unknown, 0) and resend_unknown):
        # Unknown outcomes of this run are not "delivered": cron should hear of them.
        summary.status = SendStatus.incomplete
    elif counts.get(DeliveryState.failed, 0) and summary.failed:
        summary.status = SendStatus.failed
    if not pending and not summary.stopped:
        ctx.store.complete_edition(edition.stored_id, now())
    return summary


def series_to_send(ctx: Context, list_name: str | None) -> list[str | None]:
    """The series of a list's editions a send goes through: its own (None), then each other
    frequency it offers that an active reader chose (a series nobody reads is not built)."""
    lst = ctx.newsletter.get_list(list_name)
    return [None] + [k for k in lst.other_series if ctx.store.frequency_chosen(lst.name, k)]


def _not_due(
    ctx: Context, lst: ListConfig, now: datetime, frequency: str | None = None
) -> SendReport | None:
    """The report of a run with nothing to do: before the period's send time, or once the
    period's edition is complete (None: the edition is due, or has messages pending)."""
    schedule, key = lst.series_schedule(frequency), lst.key_at(now, frequency)
    due = periods.due_at(schedule, key, lst.tz)
    if now < due:
        return SendReport(
            list=lst.name,
            edition=key,
            status=SendStatus.not_due,
            message=f"not due: edition {key} is due {_when(due)}",
        )
    stored = ctx.store.edition(lst.name, key)
    if stored is None or stored.state is not EditionState.complete:
        return None
    following = periods.following_key(schedule, key)
    return SendReport(
        list=lst.name,
        edition=key,
        status=SendStatus.not_due,
        already_sent=ctx.store.counts(stored.stored_id).get(DeliveryState.sent, 0),
        message=(
            f"not due: edition {key} was sent; the next, {following}, is due "
            f"{_when(periods.due_at(schedule, following, lst.tz))}"
        ),
    )


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} {moment.tzinfo}"


def _prepare(
    ctx: Context, lst: ListConfig, started: datetime, *, dry_run: bool, frequency: str | None
) -> SendReport | tuple[SendReport, Edition, Composer]:
    """Today's edition, checked, with its ledger filled; or the report that ends the run."""
    feed_warnings = failing_feeds(ctx, lst, started)
    edition = current_edition(ctx, lst, started, create=False, frequency=frequency)
    readers = readers_of(lst, frequency)
    if edition is None:
        return SendReport(
            list=lst.name,
            edition=lst.key_at(started, frequency),
            status=SendStatus.skipped,
            feed_warnings=feed_warnings,
            message="nothing new since the previous edition; nothing sent",
        )
    summary = SendReport(
        list=lst.name,
        edition=edition.key,
        articles={s.slug: len(s.articles) for s in edition.sections},
        feed_warnings=feed_warnings,
    )
    composer = Composer(ctx, edition, lst, started)
    # The edition's fullest message is checked before anything is sent; errors stop the run.
    check = check_edition(composer)
    summary.notes = list(check.notes)
    summary.findings = [f.as_dict() for f in check.findings]
    if check.errors:
        summary.status = SendStatus.check_failed
        summary.message = (
            f"digest check found {len(check.errors)} error(s) in the composed "
            f"message; nothing sent (first: {check.errors[0]})"
        )
        return summary
    if dry_run:
        return summary, edition, composer
    if edition.state is EditionState.open:  # frozen by a version that filled it apart
        ctx.store.enqueue_list(edition.stored_id, lst.name, started, readers)
    elif not edition.frozen:
        # The draft is frozen and its ledger filled in one transaction (streamed from the
        # subscriptions, on PostgreSQL by the server; each message is built from the
        # subscriber as the claim reads it, so no run holds the whole list in memory).
        frozen = ctx.store.freeze_edition(edition, started, readers)
        if frozen is None:
            summary.status = SendStatus.skipped
            summary.message = (
                f"no one to send edition {edition.key} to (no active, unpaused subscriber); "
                "it stays a draft"
            )
            return summary
        edition, composer = frozen, Composer(ctx, frozen, lst, started)
    return summary, edition, composer


def send_status(
    ctx: Context, list_name: str | None, key: str | None = None, *, errors: int = 10
) -> dict:
    """Where an edition stands (the latest of the list's own series when ``key`` is None;
    an edition of another series by its key, 2026-W49): its ledger counts by
    state, its latest problems, whether a run holds the list's lock (SQLite) and the live
    send workers (any engine; on PostgreSQL from every machine)."""
    lst = ctx.newsletter.get_list(list_name)
    record = ctx.store.edition_record(lst.name, key, lst.cadence.kind)
    if record is None:
        raise SelectionError(
            f"list {lst.name}: no edition {key}" if key else f"list {lst.name} has no edition yet",
            "run `digest send` first",
        )
    counts = ctx.store.counts(record["id"])
    running = lock_holder(lock_file(ctx.settings.run_dir, ctx.settings.database_url, lst.name))
    return {
        "list": lst.name,
        "edition": record["key"],
        "status": record["status"],
        "created_at": record["created_at"],
        "completed_at": record["completed_at"],
        "last_activity": ctx.store.last_activity(record["id"]),
        "total": sum(counts.values()),
        "counts": counts,
        "running": running,
        "workers": ctx.store.live_workers(record["id"]),
        "errors": ctx.store.edition_errors(record["id"], errors),
    }


def _would_send(
    ctx: Context,
    lst: ListConfig,
    edition: Edition,
    summary: SendReport,
    resend_unknown: bool,
    frequency: str | None,
) -> Iterable[Subscriber | None]:
    """Whom a real send starting now would handle: the list's recipients while the edition has
    no ledger yet; once it has one, its due rows as a claim would read them (None: a row it
    would skip), so those sent already, and those unsubscribed, paused or suppressed since,
    are counted as a real send counts them."""
    if not edition.frozen or edition.state is EditionState.open:
        return ctx.store.recipient_stream(lst.name, readers_of(lst, frequency))
    summary.already_sent = ctx.store.counts(edition.stored_id).get(DeliveryState.sent, 0)
    return ctx.store.due_recipients(edition.stored_id, lst.name, resend_unknown=resend_unknown)


def _dry_run(
    summary: SendReport, composer: Composer, recipients: Iterable[Subscriber | None]
) -> SendReport:
    """Compose what a real send would send; ``sent`` and ``skipped`` are what it would
    report (a real send then reports the same figures)."""
    started = time.perf_counter()
    for subscriber in recipients:
        message = None if subscriber is None else composer.message(subscriber)
        summary.recipients += 1
        if message is None:
            summary.skipped += 1
        else:
            summary.sent += 1
            summary.bytes += len(message.raw)
    summary.elapsed = time.perf_counter() - started
    summary.variants = composer.variants
    summary.status = SendStatus.dry_run
    summary.message = "dry run: every message composed, nothing sent, the ledger untouched"
    return summary
