"""The public edge (digest.web calls these) and returned mail.

Sign-ups are queued by the request and mailed by ``send_confirmations`` outside it, so the
form answers the same, in the same time, whatever the address's state or the relay's health.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from digest import compose, i18n
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
        env=compose.make_environment(ctx.settings.templates, lst.templates, locale=lst.locale),
    )
    shared = f"{base_url}/shared?list={lst.name}"  # says where a reader's own links are
    _ = i18n.gettext_of(lst.locale)
    values = {
        compose.UNSUBSCRIBE_URL: shared,
        compose.PREFERENCES_URL: shared,
        compose.VIEW_URL: page_url,
        compose.RECIPIENT_EMAIL: _("a reader"),
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
    frequency: str | None = None,
) -> bool:
    """A web sign-up: queue it for its confirmation mail (double opt-in), with the
    frequency chosen on the form (None or "": the list's own schedule).

    Only the address's form and the client's limit are checked here, and the same work is
    done whatever state the address is in (new, subscribed, pending, unsubscribed,
    suppressed): the answer and its timing tell nobody anything. False when the client is
    over its limit (nothing queued). ``send_confirmations`` does the rest, outside the
    request. Raises SubscriberError for an address or name that is not valid."""
    lst = ctx.newsletter.get_list(list_name)
    email = normalize_email(email)
    try:
        chosen = lst.check_frequency(frequency) if frequency else None
    except ValueError:
        raise SubscriberError(f"Choose how often: {', '.join(lst.offered)}.") from None
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
        frequency=chosen,
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
        signup.email,
        signup.name,
        lst.name,
        signup.sections,
        now,
        signup.client,
        frequency=signup.frequency,
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


# How many recipients one report may name before it is taken for a forgery or a list expansion:
# past this, only recipients whose delivery the report itself proves (VERP, Message-ID) count.
MANY_RECIPIENTS = 10


@dataclass
class BounceSummary:
    messages: int = 0
    reports: dict[str, int] = field(default_factory=dict)  # reason -> count
    suppressed: int = 0
    unsubscribed: int = 0
    soft_counted: int = 0
    unmatched: int = 0
    already_seen: int = 0
    unreadable: int = 0
    flagged: int = 0
    dry_run: bool = False
    details: list[dict] = field(default_factory=list)  # per message: what was found and done

    def as_dict(self) -> dict:
        return asdict(self)


def process_bounces(
    ctx: Context, path: Path, now: datetime, *, dry_run: bool = False
) -> BounceSummary:
    """Read returned mail and act on what can be tied to a message digest sent: hard bounces
    and complaints suppress, soft bounces count (with decay), mailed unsubscribes unsubscribe.
    ``dry_run``: say what would be done, change nothing. Processing twice changes nothing."""
    from digest.audience import bounces

    secret = ctx.settings.require_secret()
    summary = BounceSummary(dry_run=dry_run)
    try:
        messages = bounces.read_mailbox(path)
        first = next(messages, None)
    except FileNotFoundError:
        raise SubscriberError(f"{path}: no such Maildir, mbox or .eml file") from None
    if first is None:
        return summary
    for name, raw in itertools.chain([first], messages):
        summary.messages += 1
        detail: dict = {"source": name, "recipients": [], "flags": []}
        summary.details.append(detail)
        try:
            if isinstance(raw, OSError):
                raise raw
            reports = bounces.classify(raw)
        except Exception as exc:  # one bad file is reported and the rest go on
            summary.unreadable += 1
            detail["error"] = f"cannot be read as mail: {_one_line(exc)}"
            log.warning("%s: cannot be read as mail: %s", name, _one_line(exc))
            continue
        _apply_message(ctx, secret, reports, now, summary, detail, dry_run=dry_run)
    return summary


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _apply_message(
    ctx: Context,
    secret: bytes,
    reports: list[Report],
    now: datetime,
    summary: BounceSummary,
    detail: dict,
    *,
    dry_run: bool,
) -> None:
    acting = [r for r in reports if r.outcome != "ignore"]
    many = len(acting) > MANY_RECIPIENTS
    if many:
        detail["flags"].append("many-recipients")
        summary.flagged += 1
    # A VERP token names one delivery: one report of the message acts on it, the one about
    # that reader's address if it names it, else the first.
    verp_pick: Report | None = None
    if acting and acting[0].verp:
        verp_pick = _verp_choice(ctx, secret, acting)
    for report in reports:
        summary.reports[report.reason] = summary.reports.get(report.reason, 0) + 1
        action, why = _apply_report(
            ctx, secret, report, now, summary, many=many, verp_pick=verp_pick, dry_run=dry_run
        )
        detail["recipients"].append(
            {
                "address": report.recipient,
                "original_recipient": report.original_recipient,
                "reason": report.reason,
                "outcome": report.outcome,
                "status": report.status,
                "diagnostic": report.diagnostic,
                "action": action,
                "why": why,
            }
        )


def _verp_choice(ctx: Context, secret: bytes, acting: list[Report]) -> Report:
    from digest.audience import bounces

    verp = bounces.read_verp(secret, acting[0].verp or "")
    record = ctx.store.record_by_id(verp[1]) if verp else None
    if record is not None:
        mine = record.email.lower()
        for report in acting:
            if mine in {
                (report.recipient or "").lower(),
                (report.original_recipient or "").lower(),
            }:
                return report
    return acting[0]


def _subscriber_ids(ctx: Context, report: Report) -> list[int]:
    ids = []
    for address in (report.recipient, report.original_recipient):
        if address:
            sid = ctx.store.subscriber_id_for(address)
            if sid is not None and sid not in ids:
                ids.append(sid)
    return ids


def _message_id_subscriber(message_id: str) -> int | None:
    """The subscriber number digest writes into its own Message-IDs (a hint for the ledger
    look-up, which is what proves anything): ``<edition.list.subscriber.mac@domain>``."""
    local = message_id.strip("<> ").rpartition("@")[0].split(".")
    return int(local[-2]) if len(local) >= 4 and local[-2].isdigit() else None


def _trace(
    ctx: Context, secret: bytes, report: Report, now: datetime, *, many: bool
) -> tuple[int | None, int | None, str | None, str]:
    """(subscriber id, edition id, list name, why) of the delivery a report is about; the
    subscriber id is None when nothing ties the report to a message digest sent."""
    from digest.audience import bounces
    from digest.audience.tokens import read_token

    if report.reason == "unsubscribe":
        found = read_token(secret, report.token or "", "unsubscribe")
        if found is None:
            return None, None, None, "the unsubscribe token is not one digest made"
        return found[0], None, found[1], "unsubscribe token"
    if report.verp:
        verp = bounces.read_verp(secret, report.verp)
        if verp is None:
            return None, None, None, "the VERP token is not one digest made"
        return verp[1], verp[0], verp[2], "VERP token"
    named = _subscriber_ids(ctx, report)
    if report.message_id:
        hint = _message_id_subscriber(report.message_id)
        # A complaint whose recipient a feedback loop redacted: the Message-ID alone.
        alone = report.recipient is None or report.reason == "complaint"
        candidates = named or ([hint] if hint is not None and alone else [])
        found_delivery = ctx.store.delivery_by_message_id(report.message_id, candidates)
        if found_delivery:
            return found_delivery[1], found_delivery[0], None, "Message-ID of a delivery to it"
    if not named:
        return None, None, None, "no subscriber has this address"
    if ctx.settings.bounce_address:
        return None, None, None, "no valid VERP token and no Message-ID digest sent to it"
    if many:
        return None, None, None, "one of many recipients, and no Message-ID digest sent to it"
    days = ctx.settings.bounce_match_days
    for sid in named:
        if ctx.store.delivered_since(sid, now - timedelta(days=days)):
            return sid, None, None, f"a delivery to it in the last {days:g} days"
    return None, None, None, f"no delivery to it in the last {days:g} days"


def _apply_report(
    ctx: Context,
    secret: bytes,
    report: Report,
    now: datetime,
    summary: BounceSummary,
    *,
    many: bool,
    verp_pick: Report | None,
    dry_run: bool,
) -> tuple[str, str]:
    """(action, why) for one recipient of a report, acting unless ``dry_run``."""
    kind = report.outcome
    if kind == "ignore":
        return "none", f"{report.reason}: not a failure"
    if verp_pick is not None and report is not verp_pick:
        summary.unmatched += 1
        return "unmatched", "the VERP token names another recipient of this report"
    sid, edition_id, list_name, why = _trace(ctx, secret, report, now, many=many)
    if sid is None or ctx.store.record_by_id(sid) is None:
        summary.unmatched += 1
        return "unmatched", why
    if dry_run:
        if ctx.store.bounce_seen(report.key):
            summary.already_seen += 1
            return "none", "seen before"
    elif not ctx.store.record_bounce(
        report.key,
        sid,
        edition_id,
        kind,
        report.status,
        f"{report.reason}: {report.diagnostic}",
        now,
    ):
        summary.already_seen += 1
        return "none", "seen before"
    settings = ctx.settings
    if kind == "hard":
        if not dry_run:
            mark_returned(ctx, sid, consent.Action.bounce, now)
        summary.suppressed += 1
        return "suppressed", why
    if kind == "complaint":
        if not dry_run:
            mark_returned(ctx, sid, consent.Action.complaint, now)
        summary.suppressed += 1
        return "suppressed", why
    if kind == "unsubscribe":
        record = ctx.store.record_by_id(sid)
        if not list_name or record is None or record.membership(list_name) is None:
            return "none", "not on that list"
        if not dry_run:
            unsubscribe(ctx, record.email, list_name, now)
        summary.unsubscribed += 1
        return "unsubscribed", why
    summary.soft_counted += 1
    if dry_run:
        return "counted", why
    score = ctx.store.add_soft_bounce(sid, now, settings.soft_bounce_half_life_days)
    if score >= settings.soft_bounce_limit:
        mark_returned(ctx, sid, consent.Action.bounce, now, reason="soft-bounces")
        summary.suppressed += 1
        return "suppressed", f"{why}; soft bounces past the limit"
    return "counted", why
