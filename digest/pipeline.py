"""The only place the stages are wired together: ingest -> store -> select -> compose -> send.

The CLI (and later the web app) call these functions and hold no logic of their own. Preview
and dry-run go through the same selection and composition as a real send.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from email import message_from_bytes, policy
from pathlib import Path

from digest import compose, ingest
from digest.config import ListConfig, Newsletter, Settings, load_newsletter, load_settings
from digest.errors import SelectionError, SubscriberError
from digest.models import Edition, OutgoingMessage, Subscriber, SubscriberStatus
from digest.selection import edition_key, select_edition, window_start
from digest.send import MaildirTransport, SmtpTransport, Transport, send_edition
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
    def open(cls, settings: Settings | None = None) -> "Context":
        settings = settings or load_settings()
        newsletter = load_newsletter(settings.config)
        store = open_store(settings.database_url)
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
    return ingest.ingest(ctx.store, ctx.newsletter, now, on_feed=on_feed)


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

    def template(self, sections: frozenset[str] | None) -> compose.MessageTemplate | None:
        chosen = self.edition.for_sections(sections)
        if not chosen:
            return None
        slugs = tuple(s.slug for s in chosen)
        if slugs not in self._templates:
            rendered = compose.render(self.edition, chosen, newsletter=self.ctx.newsletter,
                                      lst=self.lst, base_url=self.ctx.settings.base_url,
                                      env=self.env)
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
        return compose.personalize(template, recipient, secret=self.secret)

    @property
    def variants(self) -> int:
        return len(self._templates)


# -- sending ----------------------------------------------------------------------------------

EXIT_OK, EXIT_INCOMPLETE, EXIT_FAILED, EXIT_STOPPED = 0, 10, 11, 12


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

    @property
    def exit_code(self) -> int:
        return {"stopped": EXIT_STOPPED, "incomplete": EXIT_INCOMPLETE,
                "failed": EXIT_FAILED}.get(self.status, EXIT_OK)

    def as_dict(self) -> dict:
        return asdict(self)


def make_transport(settings: Settings) -> Transport:
    relay = settings.relay
    if relay is None:
        return MaildirTransport(settings.outbox)
    return SmtpTransport(relay, connections=settings.smtp_connections,
                         timeout=settings.smtp_timeout)


async def send(ctx: Context, list_name: str | None, *, now: Callable[[], datetime] = utcnow,
               dry_run: bool = False, resend_unknown: bool = False,
               transport: Transport | None = None,
               on_progress: Callable[[int, int], None] | None = None) -> SendSummary:
    """Send today's edition of a list; safe to run again and to resume after a crash."""
    lst = ctx.newsletter.get_list(list_name)
    ctx.settings.require_secret()
    started = now()
    edition = current_edition(ctx, lst, started, create=not dry_run)
    if edition is None:
        return SendSummary(list=lst.name, edition=edition_key(started, lst.tz), status="skipped",
                           message="nothing new since the previous edition; nothing sent")
    summary = SendSummary(list=lst.name, edition=edition.key, status="complete",
                          articles={s.slug: len(s.articles) for s in edition.sections})
    recipients = {s.id: s for s in ctx.store.recipients(lst.name)}
    composer = Composer(ctx, edition, lst, started)
    if dry_run:
        return _dry_run(summary, composer, recipients.values())

    if ctx.store.edition_status(edition.id) == "open":
        ctx.store.enqueue(edition.id, recipients, started)
    before = ctx.store.counts(edition.id)
    summary.already_sent = before.get("sent", 0)
    transport = transport or make_transport(ctx.settings)
    summary.transport = transport.name

    def build(subscriber_id: int) -> OutgoingMessage | None:
        subscriber = recipients.get(subscriber_id)
        return None if subscriber is None else composer.message(subscriber)

    report = await send_edition(ctx.store, edition.id, lst.name, build, transport, now=now,
                                resend_unknown=resend_unknown, on_progress=on_progress)
    counts = report.counts
    summary.recipients = sum(counts.values())
    summary.sent, summary.deferred, summary.failed = report.sent, report.deferred, report.failed
    summary.unknown, summary.skipped = report.unknown, report.skipped
    summary.elapsed, summary.rate, summary.stopped = report.elapsed, report.rate, report.stopped
    summary.variants = composer.variants
    pending = sum(counts.get(s, 0) for s in ("queued", "sending", "in_data", "deferred"))
    if report.stopped:
        summary.status = "stopped"
    elif pending or counts.get("unknown", 0) and resend_unknown:
        summary.status = "incomplete"
    elif counts.get("failed", 0) and report.failed:
        summary.status = "failed"
    if not pending and not report.stopped:
        ctx.store.complete_edition(edition.id, now())
    return summary


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


# -- preview ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Preview:
    edition: str
    recipient: str
    html: Path
    text: Path
    eml: Path


def preview(ctx: Context, list_name: str | None, out_dir: Path, *, now: datetime,
            subscriber_email: str | None = None) -> Preview:
    """Write one recipient's message as .html, .txt and .eml; changes nothing in the store."""
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
                                name=SAMPLE_RECIPIENT.name)
    message = Composer(ctx, edition, lst, now).message(subscriber)
    if message is None:
        raise SelectionError(f"{subscriber.email} gets none of the sections in edition "
                             f"{edition.key}", "nothing would be sent to them")
    return write_preview(message, out_dir, edition.key)


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
    if dry_run or not good:
        return result
    counts = ctx.store.add_subscribers(good, now, existing=existing, allow_suppressed=force)
    result.added, result.updated, result.skipped = (counts["added"], counts["updated"],
                                                    counts["skipped"])
    return result


def set_status(ctx: Context, email: str, status: SubscriberStatus, now: datetime) -> Subscriber:
    return ctx.store.set_status(subs.normalize_email(email), status, now)
