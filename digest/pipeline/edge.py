"""The public edge (digest.web calls these) and returned mail.

Sign-ups are queued by the request and mailed by ``send_confirmations`` outside it, so the
form answers the same, in the same time, whatever the address's state or the relay's health.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from digest import compose
from digest.audience import policy as consent
from digest.audience.addresses import clean_name, normalize_email
from digest.audience.confirmation import confirmation_message
from digest.errors import SendError, SubscriberError
from digest.models import DeliveryState
from digest.pipeline.context import Context
from digest.pipeline.delivery import make_transport
from digest.pipeline.people import mark_returned, unsubscribe
from digest.send import Transport, TransportSession
from digest.store.edge import QueuedSignup

if TYPE_CHECKING:
    from digest.audience.bounces import Report

log = logging.getLogger("digest.edge")


def shared_edition(ctx: Context, list_name: str, key: str, page_url: str) -> str | None:
    """The HTML of an edition as a shared copy (the view-in-browser link readers forward):
    every section, no reader's address, no link that acts for anyone; or None."""
    edition = ctx.store.edition(list_name, key)
    if edition is None or not edition.frozen:  # a draft was never mailed to anyone
        return None
    lst = ctx.newsletter.get_list(list_name)
    chosen = edition.for_sections(None)
    if not chosen:
        return None
    base_url = ctx.settings.base_url
    rendered = compose.render(
        edition,
        chosen,
        newsletter=ctx.newsletter,
        lst=lst,
        base_url=base_url,
        env=compose.make_environment(ctx.settings.templates),
    )
    shared = f"{base_url}/shared?list={lst.name}"  # says where a reader's own links are
    values = {
        compose.UNSUBSCRIBE_URL: shared,
        compose.PREFERENCES_URL: shared,
        compose.VIEW_URL: page_url,
        compose.RECIPIENT_EMAIL: "a reader",
    }
    html = rendered.html
    for placeholder, value in values.items():
        html = html.replace(placeholder, escape(value))
    return html


# Sign-up limits. A client (an address, or the proxy's X-Forwarded-For) may queue this many
# sign-ups per window; a mailbox (plus-tags folded) gets at most one confirmation mail per
# MAILBOX_GAP and MAILBOX_PER_DAY a day, whatever address variant or list was asked for.
CLIENT_SIGNUPS, CLIENT_WINDOW = 10, 3600
MAILBOX_GAP, MAILBOX_PER_DAY = 600, 3
# A sign-up the relay could not take is retried until it is this old, then dropped.
SIGNUP_TTL = 3600
_KEEP_SIGNUPS = timedelta(days=2)  # closed rows: longer than any limit looks back


def mailbox_key(email: str) -> str:
    """A hash naming the mailbox ``email`` reaches: case and any ``+tag`` folded, so that
    ``a+x@b`` and ``A+y@b`` are limited as one mailbox."""
    local, _, domain = email.rpartition("@")
    folded = f"{local.split('+', 1)[0]}@{domain}".casefold()
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


def request_subscription(
    ctx: Context,
    email: str,
    name: str,
    list_name: str,
    sections: frozenset[str] | None,
    now: datetime,
    ip: str | None,
) -> bool:
    """A web sign-up: queue it for its confirmation mail (double opt-in).

    Only the address's form and the client's limit are checked here, and the same work is
    done whatever state the address is in (new, subscribed, pending, unsubscribed,
    suppressed): the answer and its timing tell nobody anything. False when the client is
    over its limit (nothing queued). ``send_confirmations`` does the rest, outside the
    request. Raises SubscriberError for an address or name that is not valid."""
    lst = ctx.newsletter.get_list(list_name)
    email = normalize_email(email)
    return ctx.store.queue_signup(
        email,
        clean_name(name),
        lst.name,
        sections,
        ip,
        mailbox_key(email),
        now,
        client_limit=CLIENT_SIGNUPS,
        window_seconds=CLIENT_WINDOW,
    )


@dataclass
class ConfirmationSummary:
    sent: int = 0
    dropped: int = 0  # suppressed, repeated, or over its mailbox's limit: nothing mailed
    failed: int = 0  # the relay did not take it within SIGNUP_TTL
    waiting: int = 0  # put back for the next round: the relay could not take it now


async def send_confirmations(
    ctx: Context, now: datetime, transport: Transport | None = None
) -> ConfirmationSummary:
    """Mail the confirm links of queued sign-ups (``digest serve`` runs this after every
    sign-up and every half minute). Suppressed addresses, repeats and mailboxes over their
    limit are dropped without a mail; while the relay is down the rest wait for it."""
    summary = ConfirmationSummary()
    ctx.store.prune_signups(now - _KEEP_SIGNUPS)
    queued = ctx.store.claim_signups(now)
    if not queued:
        return summary
    transport = transport or make_transport(ctx.settings)
    try:
        async with transport.session() as session:
            for index, signup in enumerate(queued):
                outcome = await _confirm_one(ctx, session, signup, now)
                setattr(summary, outcome, getattr(summary, outcome) + 1)
                if outcome == "waiting":  # the relay failed: keep the rest for later
                    for rest in queued[index + 1 :]:
                        ctx.store.release_signup(rest.id)
                    summary.waiting += len(queued) - index - 1
                    break
    except SendError as exc:
        log.warning("confirmation mails wait: the relay is unusable: %s", exc)
        for signup in queued:
            ctx.store.release_signup(signup.id)
        summary.waiting = len(queued)
    return summary


async def _confirm_one(
    ctx: Context, session: TransportSession, signup: QueuedSignup, now: datetime
) -> str:
    """Mail one sign-up's confirm link; the name of the summary's counter it adds to."""
    from digest.audience.tokens import make_token

    if (now - signup.requested_at).total_seconds() > SIGNUP_TTL:
        ctx.store.finish_signup(signup.id, "failed")
        return "failed"
    lst = ctx.newsletter.get_list(signup.list_name)
    # Recorded first (the consent policy's sign-up: a new address pending, with a pending
    # subscription to the list it asked for), then mailed only within the mailbox's limits.
    request = ctx.store.request_confirmation(
        signup.email, signup.name, lst.name, signup.sections, now, signup.client
    )
    if request is None:  # suppressed, or a confirmation mailed within ten minutes
        ctx.store.finish_signup(signup.id, "dropped")
        return "dropped"
    request_id, subscriber_id = request
    if (
        ctx.store.mailbox_mailed(signup.mailbox, now - timedelta(seconds=MAILBOX_GAP))
        or ctx.store.mailbox_mailed(signup.mailbox, now - timedelta(days=1)) >= MAILBOX_PER_DAY
    ):
        ctx.store.cancel_confirmation(request_id)
        ctx.store.finish_signup(signup.id, "dropped")
        return "dropped"
    token = make_token(ctx.settings.require_secret(), request_id, lst.name, "confirm")
    message = confirmation_message(
        lst=lst,
        newsletter_name=ctx.newsletter.name,
        recipient=signup.email,
        confirm_url=f"{ctx.settings.base_url}/c/{token}",
        subscriber_id=subscriber_id,
        request_id=request_id,
        date=now,
    )
    try:
        result = await session.deliver(message, before_data=lambda: None)
    except BaseException:
        ctx.store.cancel_confirmation(request_id)
        ctx.store.release_signup(signup.id)
        raise
    if result.state is DeliveryState.sent:
        ctx.store.finish_signup(signup.id, "sent")
        return "sent"
    # Not mailed: forget the confirmation, so that the retry is not taken for a repeat.
    ctx.store.cancel_confirmation(request_id)
    ctx.store.release_signup(signup.id)
    log.warning("a confirmation mail waits: the relay answered %s", result.code)
    return "waiting"


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
    from digest.audience import bounces

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


def _report_target(
    ctx: Context, secret: bytes, report: Report
) -> tuple[int | None, int | None, str | None]:
    """(subscriber id, edition id, list name) a report is about, best evidence first."""
    from digest.audience import bounces
    from digest.audience.tokens import read_token

    if report.kind == "unsubscribe" and report.token:
        found = read_token(secret, report.token, "unsubscribe")
        return (found[0], None, found[1]) if found else (None, None, None)
    if report.verp:
        verp = bounces.read_verp(secret, report.verp)
        if verp:
            return verp[1], verp[0], verp[2]
    if report.recipient:
        return ctx.store.subscriber_id_for(report.recipient), None, None
    return None, None, None


def _apply_report(
    ctx: Context, secret: bytes, report: Report, now: datetime, summary: BounceSummary
) -> None:
    if report.kind not in ("hard", "soft", "complaint", "unsubscribe"):
        return  # delays, auto-replies and the rest are not failures
    sid, edition_id, list_name = _report_target(ctx, secret, report)
    if sid is None or ctx.store.record_by_id(sid) is None:
        summary.unmatched += 1
        return
    if not ctx.store.record_bounce(
        report.key, sid, edition_id, report.kind, report.status, report.diagnostic, now
    ):
        summary.already_seen += 1
        return
    settings = ctx.settings
    if report.kind == "hard":
        mark_returned(ctx, sid, consent.Action.bounce, now)
        summary.suppressed += 1
    elif report.kind == "complaint":
        mark_returned(ctx, sid, consent.Action.complaint, now)
        summary.suppressed += 1
    elif report.kind == "unsubscribe" and list_name:
        record = ctx.store.record_by_id(sid)
        if record is not None and record.membership(list_name) is not None:
            unsubscribe(ctx, record.email, list_name, now)
            summary.unsubscribed += 1
    elif report.kind == "soft":
        summary.soft_counted += 1
        score = ctx.store.add_soft_bounce(sid, now, settings.soft_bounce_half_life_days)
        if score >= settings.soft_bounce_limit:
            mark_returned(ctx, sid, consent.Action.bounce, now, reason="soft-bounces")
            summary.suppressed += 1
