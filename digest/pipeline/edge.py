"""The public edge (digest.web calls these) and returned mail."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path

from digest.audience import policy as consent
from digest.audience.addresses import clean_name, normalize_email
from digest.audience.confirmation import confirmation_message
from digest.errors import SendError, SubscriberError
from digest.models import Subscriber
from digest.pipeline.context import Context
from digest.pipeline.editions import Composer
from digest.pipeline.people import mark_returned, unsubscribe
from digest.pipeline.sending import make_transport
from digest.send import Transport


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
    from digest.audience.tokens import make_token

    lst = ctx.newsletter.get_list(list_name)
    secret = ctx.settings.require_secret()
    email = normalize_email(email)
    request = ctx.store.request_confirmation(email, clean_name(name), lst.name, sections,
                                             now, ip)
    if request is None:
        return False
    request_id, subscriber_id = request
    url = f"{ctx.settings.base_url}/c/{make_token(secret, request_id, lst.name, 'confirm')}"
    message = confirmation_message(
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


def _report_target(ctx: Context, secret: bytes, report) -> tuple[int | None, int | None,
                                                                  str | None]:
    """(subscriber id, edition id, list name) a report is about, best evidence first."""
    from digest.audience import bounces
    from digest.audience.tokens import read_token

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
