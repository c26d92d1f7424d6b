"""The only place the stages are wired together: ingest -> store -> select -> compose -> send.

The CLI (and later the web app) call these functions and hold no logic of their own. Preview
and dry-run go through the same selection and composition as a real send.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from email import message_from_bytes, policy
from pathlib import Path

from digest import check as lint
from digest import compose, ingest
from digest.feeds import SUMMARY_CHARS, FetchPolicy
from digest.feeds.check import FeedCheck, check_feed as feeds_check
from digest.config import ListConfig, Newsletter, Settings, load_newsletter, load_settings
from digest.errors import SelectionError, SendError, SubscriberError
from digest.models import Edition, OutgoingMessage, Subscriber, SubscriberStatus
from digest.selection import edition_key, select_edition, window_start
from digest.send import (MaildirTransport, RetryPolicy, RunLocked, SmtpTransport, Transport,
                         run_lock, send_edition)
from digest.send.dkim import signer_for
from digest.send.lock import lock_file, lock_holder
from digest.send.relays import smtp_transports
from digest.store import Store, open_store
from digest import subscribers as subs

SAMPLE_RECIPIENT = compose.Recipient(subscriber_id=0, email="reader@example.com",
                                     name="Sample Reader")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Context:
    """What every command works with: settings, the newsletter definition and the store."""

    settings: Settings
    newsletter: Newsletter
    store: Store

    @classmethod
    def open(cls, settings: Settings | None = None, *, sync: bool = True) -> "Context":
        """``sync``: bring the store's lists and sections in line with the newsletter
        definition (a send worker started by a run that did it already skips it)."""
        settings = settings or load_settings()
        newsletter = load_newsletter(settings.config)
        store = open_store(settings.database_url, migrate_schema=sync)
        if sync:
            store.ensure_lists((lst.name, lst.title) for lst in newsletter.lists)
            store.sync_sections((s.slug, s.title, s.feeds) for s in newsletter.sections)
        return cls(settings, newsletter, store)

    def close(self) -> None:
        self.store.close()


# -- set-up -----------------------------------------------------------------------------------

def init(settings: Settings, env_path: Path = Path(".env")) -> dict:
    """Create (or upgrade) the store, and a .env holding a new secret key if there is none."""
    store = open_store(settings.database_url)
    store.close()
    wrote_env = False
    if settings.secret_key is None:
        existing = env_path.read_text(encoding="utf-8") if env_path.exists() else ""
        if "DIGEST_SECRET_KEY=" not in existing:
            line = f"DIGEST_SECRET_KEY={secrets.token_urlsafe(48)}\n"
            sep = "" if not existing or existing.endswith("\n") else "\n"
            env_path.write_text(existing + sep + line, encoding="utf-8")
            env_path.chmod(0o600)
            wrote_env = True
    return {"database": settings.database_url, "env_file": str(env_path) if wrote_env else None}


# -- ingest -----------------------------------------------------------------------------------

def fetch(ctx: Context, now: datetime, on_feed=None) -> ingest.IngestReport:
    return ingest.ingest(ctx.store, ctx.newsletter, now, on_feed=on_feed,
                         policy=FetchPolicy.from_settings(ctx.settings),
                         concurrency=ctx.settings.fetch_concurrency)


def feed_health(ctx: Context, now: datetime) -> list[ingest.FeedHealth]:
    return ingest.feed_health(ctx.store, ctx.newsletter, now, ctx.settings.feed_failing_days)


def failing_feeds(ctx: Context, lst: ListConfig, now: datetime) -> list[str]:
    """The feeds of the list's sections failing for ``feed_failing_days`` days or more."""
    return ingest.failing_feeds(ctx.store, ctx.newsletter, now, ctx.settings.feed_failing_days,
                                sections=[s.slug for s in ctx.newsletter.sections_of(lst)])


def check_feed(settings: Settings, source: str, now: datetime) -> FeedCheck:
    """Fetch and parse one feed, store nothing; the newsletter definition, when there is one,
    gives the summary length, the User-Agent's contact and the feed's section or router."""
    newsletter = load_newsletter(settings.config) if settings.config.exists() else None
    plan = None
    if newsletter is not None:
        wanted = ingest.feed_source(source)
        plan = next((p for p in ingest.plan_feeds(newsletter) if p.url == wanted), None)
    return feeds_check(source, now=now, policy=FetchPolicy.from_settings(settings),
                       contact=newsletter.website if newsletter else None,
                       summary_chars=newsletter.summary_chars if newsletter else SUMMARY_CHARS,
                       section=plan.section if plan and not plan.router else None,
                       router=plan.router if plan else None)


def import_articles(ctx: Context, path: Path, now: datetime):
    return ingest.import_articles(ctx.store, path, now,
                                  sections=[s.slug for s in ctx.newsletter.sections])


# -- selection --------------------------------------------------------------------------------

def current_edition(ctx: Context, lst: ListConfig, now: datetime, *, create: bool
                    ) -> Edition | None:
    """Today's edition of a list: the frozen one if it exists, else a new selection
    (stored only when ``create``), or None when nothing is new."""
    key = edition_key(now, lst.tz)
    existing = ctx.store.edition(lst.name, key)
    if existing is not None:
        return existing
    sections = ctx.newsletter.sections_of(lst)
    since = window_start(now, ctx.store.previous_edition_time(lst.name, key), lst.window_hours)
    edition = select_edition(
        list_name=lst.name, key=key, sections=sections,
        candidates=ctx.store.articles(sections=[s.slug for s in sections], since=since),
        already_sent=ctx.store.sent_article_keys(lst.name), since=since, now=now)
    if edition is not None and create:
        edition = ctx.store.create_edition(edition)
    return edition


# -- composition ------------------------------------------------------------------------------

class Composer:
    """Renders and inlines once per distinct section set, then personalizes per recipient."""

    def __init__(self, ctx: Context, edition: Edition, lst: ListConfig, now: datetime):
        self.ctx, self.edition, self.lst, self.now = ctx, edition, lst, now
        self.secret = ctx.settings.require_secret()
        self.env = compose.make_environment(ctx.settings.templates)
        self._templates: dict[tuple[str, ...], compose.MessageTemplate] = {}
        self.notes: dict[tuple[str, ...], tuple[str, ...]] = {}  # what trimming did, per set

    def template(self, sections: frozenset[str] | None) -> compose.MessageTemplate | None:
        chosen = self.edition.for_sections(sections)
        if not chosen:
            return None
        slugs = tuple(s.slug for s in chosen)
        if slugs not in self._templates:
            rendered = compose.render(self.edition, chosen, newsletter=self.ctx.newsletter,
                                      lst=self.lst, base_url=self.ctx.settings.base_url,
                                      env=self.env)
            self.notes[slugs] = rendered.notes
            self._templates[slugs] = compose.prepare(
                rendered, self.edition, newsletter=self.ctx.newsletter, lst=self.lst,
                base_url=self.ctx.settings.base_url, date=self.now)
        return self._templates[slugs]

    def message(self, subscriber: Subscriber) -> OutgoingMessage | None:
        template = self.template(subscriber.sections)
        if template is None:
            return None
        recipient = compose.Recipient(subscriber_id=subscriber.id or 0, email=subscriber.email,
                                      name=subscriber.name)
        message = compose.personalize(template, recipient, secret=self.secret)
        return with_verp(self.ctx.settings, self.secret, message, self.lst.name)

    @property
    def variants(self) -> int:
        return len(self._templates)


# -- sending ----------------------------------------------------------------------------------

EXIT_OK, EXIT_INCOMPLETE, EXIT_FAILED, EXIT_STOPPED = 0, 10, 11, 12
EXIT_CHECK = 13  # `digest check` found errors in the composed message: nothing was sent
EXIT_LOCKED = 14  # another run is sending the list: this one sent nothing


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
    def exit_code(self) -> int:
        return {"stopped": EXIT_STOPPED, "incomplete": EXIT_INCOMPLETE,
                "failed": EXIT_FAILED, "check-failed": EXIT_CHECK,
                "locked": EXIT_LOCKED}.get(self.status, EXIT_OK)

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
    if not _checked(summary, composer):
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


# -- preview and check -----------------------------------------------------------------------

@dataclass(frozen=True)
class Sample:
    """One recipient's message of today's edition, composed exactly as ``send`` would."""

    edition: Edition
    list: ListConfig
    message: OutgoingMessage
    sections: tuple[str, ...]  # the slugs it holds
    notes: tuple[str, ...] = ()  # what trimming left out to fit the size budget


def sample(ctx: Context, list_name: str | None, *, now: datetime,
           subscriber_email: str | None = None,
           sections: frozenset[str] | None = None) -> Sample:
    """Compose one message of today's edition; changes nothing in the store.

    The recipient is ``subscriber_email`` with their own section choice, else a sample reader
    with ``sections`` (None: every section)."""
    lst = ctx.newsletter.get_list(list_name)
    edition = current_edition(ctx, lst, now, create=False)
    if edition is None:
        raise SelectionError(f"list {lst.name}: no articles for an edition",
                             "run `digest fetch` first, or widen window_hours")
    if subscriber_email:
        subscriber = ctx.store.subscriber(subscriber_email)
        if subscriber is None:
            raise SubscriberError(f"no subscriber {subscriber_email}")
        subscriber = Subscriber(id=subscriber.id, email=subscriber.email, name=subscriber.name,
                                sections=ctx.store.subscriptions(subscriber.email).get(lst.name))
    else:
        subscriber = Subscriber(id=SAMPLE_RECIPIENT.subscriber_id, email=SAMPLE_RECIPIENT.email,
                                name=SAMPLE_RECIPIENT.name, sections=sections)
    composer = Composer(ctx, edition, lst, now)
    message = composer.message(subscriber)
    if message is None:
        raise SelectionError(f"{subscriber.email} gets none of the sections in edition "
                             f"{edition.key}", "nothing would be sent to them")
    slugs = tuple(s.slug for s in edition.for_sections(subscriber.sections))
    return Sample(edition, lst, message, slugs, composer.notes.get(slugs, ()))


@dataclass(frozen=True)
class CheckReport:
    edition: str
    recipient: str
    findings: tuple[lint.Finding, ...]
    notes: tuple[str, ...] = ()

    @property
    def errors(self) -> list[lint.Finding]:
        return lint.errors(list(self.findings))

    @property
    def exit_code(self) -> int:
        return EXIT_CHECK if self.errors else EXIT_OK

    def as_dict(self) -> dict:
        return {"edition": self.edition, "recipient": self.recipient,
                "errors": len(self.errors), "warnings": len(self.findings) - len(self.errors),
                "notes": list(self.notes), "findings": [f.as_dict() for f in self.findings]}


def check(ctx: Context, list_name: str | None, *, now: datetime,
          subscriber_email: str | None = None) -> CheckReport:
    """Lint today's message (a sample reader's with every section, or one subscriber's)."""
    composed = sample(ctx, list_name, now=now, subscriber_email=subscriber_email)
    return _report(composed.edition.key, composed.message, composed.notes)


def _report(key: str, message: OutgoingMessage, notes: tuple[str, ...]) -> CheckReport:
    findings = lint.check(message.raw)
    findings.sort(key=lambda f: f.severity != lint.ERROR)
    return CheckReport(key, message.recipient, tuple(findings), notes)


def _checked(summary: SendSummary, composer: Composer) -> bool:
    """Check the edition's fullest message before anything is sent; False stops the run."""
    full = Subscriber(id=SAMPLE_RECIPIENT.subscriber_id, email=SAMPLE_RECIPIENT.email,
                      name=SAMPLE_RECIPIENT.name)
    report = _report(composer.edition.key, composer.message(full),
                     composer.notes.get(tuple(s.slug for s in composer.edition.sections), ()))
    summary.notes = list(report.notes)
    summary.findings = [f.as_dict() for f in report.findings]
    if report.errors:
        summary.status = "check-failed"
        summary.message = (f"digest check found {len(report.errors)} error(s) in the composed "
                           f"message; nothing sent (first: {report.errors[0]})")
    return not report.errors


@dataclass(frozen=True)
class Preview:
    edition: str
    recipient: str
    html: Path
    text: Path
    eml: Path
    notes: tuple[str, ...] = ()


def preview(ctx: Context, list_name: str | None, out_dir: Path, *, now: datetime,
            subscriber_email: str | None = None) -> Preview:
    """Write one recipient's message as .html, .txt and .eml; changes nothing in the store."""
    composed = sample(ctx, list_name, now=now, subscriber_email=subscriber_email)
    written = write_preview(composed.message, out_dir, composed.edition.key)
    return Preview(written.edition, written.recipient, written.html, written.text, written.eml,
                   composed.notes)


def write_preview(message: OutgoingMessage, out_dir: Path, edition_key_: str) -> Preview:
    out_dir.mkdir(parents=True, exist_ok=True)
    parsed = message_from_bytes(message.raw, policy=policy.default)
    paths = Preview(edition=edition_key_, recipient=message.recipient,
                    html=out_dir / "digest.html", text=out_dir / "digest.txt",
                    eml=out_dir / "digest.eml")
    paths.eml.write_bytes(message.raw)
    paths.html.write_text(parsed.get_body(("html",)).get_content(), encoding="utf-8")
    paths.text.write_text(parsed.get_body(("plain",)).get_content(), encoding="utf-8")
    return paths


# -- subscribers ------------------------------------------------------------------------------

def _known(ctx: Context) -> tuple[list[str], list[str], tuple[str, ...]]:
    lists = [lst.name for lst in ctx.newsletter.lists]
    default = (lists[0],) if len(lists) == 1 else ()
    return lists, [s.slug for s in ctx.newsletter.sections], default


def add_subscriber(ctx: Context, row: dict, now: datetime, *, force: bool = False) -> Subscriber:
    lists, sections, default = _known(ctx)
    item = subs.new_subscriber(row, lists=lists, sections=sections, default_lists=default,
                               source="cli")
    if not item.lists:
        raise SubscriberError("this newsletter has several lists: name them with --list")
    ctx.store.add_subscribers([item], now, allow_suppressed=force)
    return ctx.store.subscriber(item.email)


@dataclass
class ImportResult:
    path: str
    rows: int
    added: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: list[subs.Reject] = field(default_factory=list)
    dry_run: bool = False


def import_subscribers(ctx: Context, path: Path, now: datetime, *, dry_run: bool = False,
                       existing: str = "update", force: bool = False) -> ImportResult:
    """Import a CSV or JSON-lines file: good rows in one transaction, bad rows reported."""
    lists, sections, default = _known(ctx)
    good, rejects = subs.read_file(path, lists=lists, sections=sections, default_lists=default)
    result = ImportResult(path=str(path), rows=len(good) + len(rejects), rejected=rejects,
                          dry_run=dry_run)
    if not good:
        return result
    if not force:  # a suppressed address is a bad row of its own, not the end of the import
        suppressed = ctx.store.suppressed_among([g.email for g in good])
        result.rejected += [subs.Reject(g.line, f"{g.email} is on the suppression list "
                                        f"({suppressed[g.email.casefold()]}); --force imports it")
                            for g in good if g.email.casefold() in suppressed]
        result.rejected.sort(key=lambda r: r.line)
        good = [g for g in good if g.email.casefold() not in suppressed]
    counts = ctx.store.add_subscribers(good, now, existing=existing, allow_suppressed=force,
                                       dry_run=dry_run)
    result.added, result.updated, result.skipped = (counts["added"], counts["updated"],
                                                    counts["skipped"])
    return result


def set_status(ctx: Context, email: str, status: SubscriberStatus, now: datetime) -> Subscriber:
    return ctx.store.set_status(subs.normalize_email(email), status, now)


def unsubscribe(ctx: Context, email: str, list_name: str | None, now: datetime) -> Subscriber:
    """Unsubscribe from one list, or (without a list) from everything."""
    email = subs.normalize_email(email)
    if list_name is None:
        return ctx.store.set_status(email, SubscriberStatus.unsubscribed, now)
    sid = ctx.store.subscriber_id_for(email)
    if sid is None or not ctx.store.set_membership(sid, list_name, now, state="unsubscribed"):
        raise SubscriberError(f"{email} is not on the list {list_name!r}")
    return ctx.store.subscriber(email)


def resubscribe(ctx: Context, email: str, list_name: str | None, now: datetime, *,
                force: bool = False) -> Subscriber:
    return ctx.store.resubscribe(subs.normalize_email(email), now, list_name,
                                 lift_suppression=force)


def set_preferences(ctx: Context, email: str, list_name: str | None, now: datetime, *,
                    sections: str | None = None, paused: bool | None = None,
                    join: bool = False) -> Subscriber:
    """Change one subscription's sections ("" or "all": every section) or pause it; with
    ``join``, subscribe to the list first."""
    lst = ctx.newsletter.get_list(list_name)
    email = subs.normalize_email(email)
    sid = ctx.store.subscriber_id_for(email)
    if sid is None:
        raise SubscriberError(f"no subscriber {email}")
    chosen: frozenset[str] | None | str = "keep"
    if sections is not None:
        known = [s.slug for s in ctx.newsletter.sections_of(lst)]
        names = () if sections.strip().lower() == "all" else subs.parse_names(
            sections, known, "section")
        chosen = frozenset(names) if names else None
    if not ctx.store.set_membership(sid, lst.name, now, sections=chosen, paused=paused,
                                    create=join):
        raise SubscriberError(f"{email} is not on the list {lst.name!r}",
                              "pass --join to subscribe them to it")
    return ctx.store.subscriber(email)


# -- the public edge (digest.web calls these) -------------------------------------------------

def with_verp(settings: Settings, secret: bytes, message: OutgoingMessage,
              list_name: str) -> OutgoingMessage:
    """The message with its VERP envelope sender, when DIGEST_BOUNCE_ADDRESS is set."""
    from digest.bounces import verp_address

    if settings.bounce_address is None or message.edition_id == 0 \
            or message.subscriber_id >= 2**32:
        return message
    return replace(message, envelope_from=verp_address(
        secret, settings.bounce_address, message.edition_id, message.subscriber_id, list_name))


def view_in_browser(ctx: Context, list_name: str, key: str, subscriber_id: int,
                    now: datetime) -> str | None:
    """The HTML of an edition as this reader got it (their sections, their links), or None."""
    record = ctx.store.record_by_id(subscriber_id)
    membership = record.membership(list_name) if record else None
    edition = ctx.store.edition(list_name, key)
    if membership is None or edition is None:
        return None
    lst = ctx.newsletter.get_list(list_name)
    reader = Subscriber(id=record.id, email=record.email, name=record.name,
                        sections=membership.sections, lists=(list_name,))
    message = Composer(ctx, edition, lst, edition.created_at).message(reader)
    if message is None:
        return None
    parsed = message_from_bytes(message.raw, policy=policy.default)
    return parsed.get_body(("html",)).get_content()


async def request_subscription(ctx: Context, email: str, name: str, list_name: str,
                               sections: frozenset[str] | None, now: datetime,
                               ip: str | None, transport: Transport | None = None) -> bool:
    """A web sign-up: store it pending and mail the confirm link (double opt-in).

    False when nothing was mailed (a suppressed address, or a request repeated within ten
    minutes); the web page answers the same either way, so it tells nobody who is subscribed.
    """
    from digest.tokens import make_token

    lst = ctx.newsletter.get_list(list_name)
    secret = ctx.settings.require_secret()
    email = subs.normalize_email(email)
    request = ctx.store.request_confirmation(email, subs.clean_name(name), lst.name, sections,
                                             now, ip)
    if request is None:
        return False
    request_id, subscriber_id = request
    url = f"{ctx.settings.base_url}/c/{make_token(secret, request_id, lst.name, 'confirm')}"
    message = subs.confirmation_message(
        lst=lst, newsletter_name=ctx.newsletter.name, recipient=email, confirm_url=url,
        subscriber_id=subscriber_id, request_id=request_id, date=now)
    transport = transport or make_transport(ctx.settings)
    try:
        async with transport.session() as session:
            result = await session.deliver(message, before_data=lambda: None)
    except BaseException:
        ctx.store.cancel_confirmation(request_id)
        raise
    if result.state.value != "sent":
        # Not mailed: forget the request, so that trying again soon is not taken for a flood.
        ctx.store.cancel_confirmation(request_id)
        raise SendError(f"the confirmation mail to the relay failed: {result.code} "
                        f"{result.reply}".strip())
    return True


@dataclass
class BounceSummary:
    messages: int = 0
    reports: dict[str, int] = field(default_factory=dict)  # kind -> count
    suppressed: int = 0
    unsubscribed: int = 0
    soft_counted: int = 0
    unmatched: int = 0
    already_seen: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def process_bounces(ctx: Context, path: Path, now: datetime) -> BounceSummary:
    """Read returned mail and act on it: hard bounces and complaints suppress, soft bounces
    count (with decay), mailed unsubscribes unsubscribe. Processing twice changes nothing."""
    from digest import bounces

    secret = ctx.settings.require_secret()
    summary = BounceSummary()
    try:
        messages = list(bounces.read_mailbox(path))
    except FileNotFoundError:
        raise SubscriberError(f"{path}: no such Maildir, mbox or .eml file") from None
    for _name, raw in messages:
        summary.messages += 1
        for report in bounces.classify(raw):
            summary.reports[report.kind] = summary.reports.get(report.kind, 0) + 1
            _apply_report(ctx, secret, report, now, summary)
    return summary


def _report_target(ctx: Context, secret: bytes, report) -> tuple[int | None, int | None,
                                                                  str | None]:
    """(subscriber id, edition id, list name) a report is about, best evidence first."""
    from digest import bounces
    from digest.tokens import read_token

    if report.kind == "unsubscribe" and report.token:
        found = read_token(secret, report.token, "unsubscribe")
        return (found[0], None, found[1]) if found else (None, None, None)
    if report.verp:
        found = bounces.read_verp(secret, report.verp)
        if found:
            return found[1], found[0], found[2]
    if report.recipient:
        return ctx.store.subscriber_id_for(report.recipient), None, None
    return None, None, None


def _apply_report(ctx: Context, secret: bytes, report, now: datetime,
                  summary: BounceSummary) -> None:
    if report.kind not in ("hard", "soft", "complaint", "unsubscribe"):
        return  # delays, auto-replies and the rest are not failures
    sid, edition_id, list_name = _report_target(ctx, secret, report)
    if sid is None or ctx.store.record_by_id(sid) is None:
        summary.unmatched += 1
        return
    if not ctx.store.record_bounce(report.key, sid, edition_id, report.kind, report.status,
                                   report.diagnostic, now):
        summary.already_seen += 1
        return
    settings = ctx.settings
    if report.kind == "hard":
        ctx.store.mark(sid, SubscriberStatus.bounced, "hard-bounce", now)
        summary.suppressed += 1
    elif report.kind == "complaint":
        ctx.store.mark(sid, SubscriberStatus.complained, "complaint", now)
        summary.suppressed += 1
    elif report.kind == "unsubscribe" and list_name:
        ctx.store.set_membership(sid, list_name, now, state="unsubscribed")
        summary.unsubscribed += 1
    elif report.kind == "soft":
        summary.soft_counted += 1
        score = ctx.store.add_soft_bounce(sid, now, settings.soft_bounce_half_life_days)
        if score >= settings.soft_bounce_limit:
            ctx.store.mark(sid, SubscriberStatus.bounced, "soft-bounces", now)
            summary.suppressed += 1
