"""Sending: today's edition of a list, by one worker or several, and where it stands."""

from __future__ import annotations

import time
import zoneinfo
from collections.abc import Callable, Iterable
from datetime import datetime, tzinfo
from typing import Any

from digest import periods
from digest.config import ListConfig
from digest.errors import SelectionError
from digest.models import (
    EVERY_READER,
    PENDING_STATES,
    DeliveryState,
    Edition,
    EditionState,
    Readers,
    Subscriber,
)
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
        return await (_send_local if lst.deliver_local else _send)(
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
    key: str | None = None,
) -> SendReport:
    """Send one edition of a list: the one due now, or (a list delivering in each reader's
    zone) the one of ``key``, to the readers whose moment has come."""
    ctx.settings.require_secret()
    started = now()
    if key is None:
        waiting = _not_due(ctx, lst, started, frequency)
        if waiting is not None:
            return waiting
    # Creating the edition and its ledger is one machine's job: on PostgreSQL the others
    # wait for it here, then all send.
    with ctx.store.list_lock(lst.name, wait=True):
        prepared = _prepare(ctx, lst, started, dry_run=dry_run, frequency=frequency, key=key)
    if isinstance(prepared, SendReport):
        return prepared
    summary, edition, composer = prepared
    if dry_run:
        would = _would_send(ctx, lst, edition, summary, resend_unknown, frequency, started)
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
    if lst.deliver_local:
        _note_waiting(ctx, lst, summary, edition.stored_id, now())
    if summary.stopped:
        summary.status = SendStatus.stopped
    elif (
        pending > summary.waiting
        or summary.unknown
        or (counts.get(DeliveryState.unknown, 0) and resend_unknown)
    ):
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


# -- delivery in each reader's zone -----------------------------------------------------------


def _zone(lst: ListConfig, name: str | None) -> tzinfo:
    """A reader's zone (None: the list's; a name this machine no longer knows: the list's)."""
    if name is None:
        return lst.tz
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return lst.tz


def _reader_zones(ctx: Context, lst: ListConfig, readers: Readers = EVERY_READER) -> list[tzinfo]:
    names = sorted(ctx.store.recipient_zones(lst.name, readers), key=lambda n: n or "")
    return list({str(z): z for z in (_zone(lst, n) for n in names)}.values())


def _due(lst: ListConfig, key: str) -> Callable[[str | None], datetime]:
    """The moment the edition ``key`` is due to a reader, from the reader's zone (on the
    schedule of the series ``key`` belongs to)."""
    schedule = lst.schedule_of(key)
    return lambda name: periods.reader_due(schedule, key, _zone(lst, name))


def _when_local(moment: datetime, zone: tzinfo) -> str:
    """A moment in UTC and on the wall clock of the zone it is due in."""
    return f"{moment:%Y-%m-%d %H:%M} UTC ({moment.astimezone(zone):%H:%M} {zone})"


def _note_waiting(
    ctx: Context, lst: ListConfig, summary: SendReport, edition_id: int, now: datetime
) -> None:
    """Say in the report which rows wait for their reader's moment, and when the next is."""
    summary.waiting, first = ctx.store.waiting(edition_id, now)
    if first is None:
        return
    key = summary.edition or ""
    schedule = lst.schedule_of(key)
    zones = [z for z in _reader_zones(ctx, lst) if periods.reader_due(schedule, key, z) == first]
    summary.next_due = _when_local(first, zones[0] if zones else lst.tz)
    summary.message = (
        f"{summary.waiting} reader(s) wait for {lst.send_at or '00:00'} in their zone; "
        f"the next are due {summary.next_due}"
    )


async def _send_local(
    ctx: Context,
    lst: ListConfig,
    *,
    now: Callable[[], datetime],
    dry_run: bool,
    **options: Any,
) -> SendReport:
    """Send the editions of a list delivering in each reader's zone that are in flight at
    ``now`` (two at once when one's last zones overlap the next's first), oldest first:
    each to the readers whose moment has come. The report is the newest edition's, the
    older one's in ``earlier``."""
    ctx.settings.require_secret()
    started = now()
    # The series of the readers who chose ``frequency`` (None: the list's own).
    frequency = options.get("frequency")
    schedule = lst.series_schedule(frequency)
    zones = _reader_zones(ctx, lst, readers_of(lst, frequency))
    reports: list[SendReport] = []
    done: list[str] = []
    for key in periods.local_keys(schedule, started, lst.tz, zones):
        # Its record only (not its articles): most hourly runs stop here.
        stored = ctx.store.edition_record(lst.name, key)
        state = None if stored is None else EditionState(stored["status"])
        if state is EditionState.complete:
            done.append(key)
            continue
        if state is EditionState.sending and stored is not None and not dry_run:
            waiting = _only_waiting(ctx, lst, key, stored["id"], started, options)
            if waiting is not None:
                reports.append(waiting)
                continue
        reports.append(await _send(ctx, lst, now=now, dry_run=dry_run, key=key, **options))
    if not reports:
        key, moment, zone = periods.next_local_moment(schedule, started, lst.tz, zones, skip=done)
        sent = f"edition {done[-1]} was sent; " if done else ""
        return SendReport(
            list=lst.name,
            edition=done[-1] if done else key,
            status=SendStatus.not_due,
            next_due=_when_local(moment, zone),
            message=f"not due: {sent}edition {key} is due {_when_local(moment, zone)}",
        )
    latest = reports[-1]
    latest.earlier = reports[:-1]
    return latest


def _only_waiting(
    ctx: Context, lst: ListConfig, key: str, edition_id: int, now: datetime, options: dict
) -> SendReport | None:
    """The report of a frozen edition none of whose rows can go now, every one left waiting
    for its reader's moment (None: some row is due, or was left claimed by a killed run and
    must be recovered)."""
    counts = ctx.store.counts(edition_id)
    claimed = counts.get(DeliveryState.sending, 0) + counts.get(DeliveryState.in_data, 0)
    resend = options.get("resend_unknown", False)
    if claimed or ctx.store.due_count(edition_id, resend_unknown=resend, now=now):
        return None
    summary = SendReport(list=lst.name, edition=key)
    _note_waiting(ctx, lst, summary, edition_id, now)
    if not summary.waiting:
        return None  # nothing left: the run completes it
    summary.status = SendStatus.not_due
    summary.counts = counts
    summary.recipients = sum(counts.values())
    summary.already_sent = counts.get(DeliveryState.sent, 0)
    summary.message = f"not due: {summary.message}"
    return summary


def _prepare(
    ctx: Context,
    lst: ListConfig,
    started: datetime,
    *,
    dry_run: bool,
    frequency: str | None,
    key: str | None = None,
) -> SendReport | tuple[SendReport, Edition, Composer]:
    """Today's edition (or the one of ``key``), checked, with its ledger filled; or the
    report that ends the run."""
    feed_warnings = failing_feeds(ctx, lst, started)
    edition = current_edition(ctx, lst, started, create=False, frequency=frequency, key=key)
    readers = readers_of(lst, frequency)
    if edition is None:
        return SendReport(
            list=lst.name,
            edition=key or lst.key_at(started, frequency),
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
    # A list delivering in each reader's zone: each row due at its reader's moment.
    due = _due(lst, edition.key) if lst.deliver_local else None
    if edition.state is EditionState.open:  # frozen by a version that filled it apart
        ctx.store.enqueue_list(edition.stored_id, lst.name, started, readers, due)
    elif not edition.frozen:
        # The draft is frozen and its ledger filled in one transaction (streamed from the
        # subscriptions, on PostgreSQL by the server; each message is built from the
        # subscriber as the claim reads it, so no run holds the whole list in memory).
        frozen = ctx.store.freeze_edition(edition, started, readers, due)
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
    waiting = SendReport(list=lst.name, edition=record["key"])
    if lst.deliver_local:
        _note_waiting(ctx, lst, waiting, record["id"], utcnow())
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
        # A list delivering in each reader's zone: rows waiting for their moment, the next.
        "waiting": waiting.waiting,
        "next_due": waiting.next_due,
    }


def _would_send(
    ctx: Context,
    lst: ListConfig,
    edition: Edition,
    summary: SendReport,
    resend_unknown: bool,
    frequency: str | None,
    now: datetime,
) -> Iterable[Subscriber | None]:
    """Whom a real send starting now would handle: the list's recipients while the edition has
    no ledger yet; once it has one, its due rows as a claim would read them (None: a row it
    would skip), so those sent already, and those unsubscribed, paused or suppressed since,
    are counted as a real send counts them. A list delivering in each reader's zone: only
    the readers whose moment has come (the others are counted as ``waiting``)."""
    local = lst.deliver_local
    if not edition.frozen or edition.state is EditionState.open:
        readers = readers_of(lst, frequency)
        if not local:
            return ctx.store.recipient_stream(lst.name, readers)
        due = _due(lst, edition.key)
        names = ctx.store.recipient_zones(lst.name, readers)
        later = {n: due(n) for n in names if due(n) > now}
        if later:
            waiting = ctx.store.recipient_stream(lst.name, readers, set(later))
            summary.waiting = sum(1 for _ in waiting)
            name, first = min(later.items(), key=lambda item: item[1])
            summary.next_due = _when_local(first, _zone(lst, name))
        return ctx.store.recipient_stream(lst.name, readers, names - set(later))
    summary.already_sent = ctx.store.counts(edition.stored_id).get(DeliveryState.sent, 0)
    if local:
        _note_waiting(ctx, lst, summary, edition.stored_id, now)
    return ctx.store.due_recipients(
        edition.stored_id, lst.name, resend_unknown=resend_unknown, now=now if local else None
    )


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
    if summary.waiting:
        summary.message += (
            f"; {summary.waiting} reader(s) wait for their zone's send time, the next due "
            f"{summary.next_due}"
        )
    return summary
