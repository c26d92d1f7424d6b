"""Test copies: `digest send --to ADDR[,ADDR...]`, the edition as a reader would get it, sent
to the editor's own addresses before the real send.

A test copy is composed exactly as a send composes a reader's message (the edition as it
stands, a sample reader with every section, or ``--as`` a subscriber's sections and name),
then given a Subject prefix and its own Message-ID (``digest.compose.proof``), DKIM-signed
when signing is configured, and handed to the configured transport (the relays, else the
outbox). Nothing is written to the store: the edition is read with ``create=False`` (a test
send never creates or freezes one) and no ledger row is made, so the real send afterwards
goes to every reader as if no test had been sent.

What a test copy may not do:

- carry a capability for a real reader: its unsubscribe and preferences links are signed
  for the sample subscriber id 0, which the web edge answers with "not found", even with
  ``--as``;
- reach someone who left: an address the store holds as unsubscribed (from this list or from
  every list), bounced, complained, erased or otherwise suppressed is refused, and nothing is
  sent;
- bend the Subject: a prefix holding a line break or other control character is refused.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from digest.audience import policy
from digest.audience.addresses import email_key, normalize_email, printable
from digest.compose import MessageTemplate
from digest.compose.headers import one_line
from digest.compose.proof import as_test_copy, subject_of
from digest.config import ListConfig
from digest.errors import ConfigError, SelectionError, SendError, SubscriberError
from digest.exits import ExitCode, most_serious
from digest.models import (
    TEST_SUBJECT_PREFIX,
    DeliveryState,
    OutgoingMessage,
    Subscriber,
    SubscriberStatus,
)
from digest.pipeline.checks import check_edition
from digest.pipeline.context import Context, utcnow
from digest.pipeline.delivery import list_signer, make_transports
from digest.pipeline.editions import SAMPLE_RECIPIENT, Composer, current_edition
from digest.pipeline.sections import stale_section_warning
from digest.send import Transport
from digest.send.dkim import DkimSigner

DEFAULT_PREFIX = TEST_SUBJECT_PREFIX
MAX_PREFIX = 100
MAX_ADDRESSES = 50  # a test goes to a few editors, not to a list
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_STATE_CODES = {
    DeliveryState.sent: ExitCode.OK,
    DeliveryState.deferred: ExitCode.INCOMPLETE,
    DeliveryState.unknown: ExitCode.INCOMPLETE,
    DeliveryState.failed: ExitCode.FAILED,
}


# `list` is a field of ProofReport (a JSON key): its other fields' types are named here.
Lines = list[str]
Copies = list[dict]


@dataclass
class ProofReport:
    """What one list's test send did: to whom each copy went and how it ended."""

    list: str
    edition: str
    reader: str  # whose message it is: "sample reader" or the --as address
    sections: Lines  # the slugs the copy holds
    subject: str
    transport: str = ""
    copies: Copies = field(default_factory=Copies)  # {"to", "state", "code", "reply"}
    warnings: Lines = field(default_factory=Lines)
    notes: Lines = field(default_factory=Lines)  # what trimming left out

    @property
    def exit_code(self) -> int:
        return most_serious([_STATE_CODES[DeliveryState(c["state"])] for c in self.copies])

    def as_dict(self) -> dict:
        return {
            "list": self.list,
            "edition": self.edition,
            "status": "test-sent",
            "reader": self.reader,
            "sections": self.sections,
            "subject": self.subject,
            "transport": self.transport,
            "copies": self.copies,
            "sent": sum(c["state"] == DeliveryState.sent for c in self.copies),
            "warnings": self.warnings,
            "notes": self.notes,
            "ledger": "untouched",
            "exit_code": self.exit_code,
        }


def proof_addresses(text: str | Iterable[str]) -> list[str]:
    """The addresses of ``--to`` (comma-separated, or several options) in normal form, each
    once; a SubscriberError naming the first bad one."""
    items = [text] if isinstance(text, str) else list(text)
    found: dict[str, str] = {}
    for part in (p.strip() for item in items for p in item.split(",")):
        if not part:
            continue
        try:
            address = normalize_email(part)
        except SubscriberError as exc:
            raise SubscriberError(f"--to: {exc.message}", "nothing was sent") from None
        found.setdefault(email_key(address), address)
    if not found:
        raise ConfigError("--to names no address", "give --to you@example.com[,other@...]")
    if len(found) > MAX_ADDRESSES:
        raise ConfigError(
            f"--to names {len(found)} addresses; a test send goes to at most {MAX_ADDRESSES}",
            "to mail the readers, run `digest send`",
        )
    return list(found.values())


def check_prefix(prefix: str) -> str:
    """``prefix`` if it can open a Subject line, else ConfigError."""
    if _CONTROL.search(prefix):
        raise ConfigError(
            f"--subject-prefix '{printable(prefix)}' holds a line break or control character",
            "a subject is one line",
        )
    if len(prefix) > MAX_PREFIX:
        raise ConfigError(f"--subject-prefix is longer than {MAX_PREFIX} characters")
    return prefix


def _refusal(ctx: Context, lst: ListConfig, address: str) -> str | None:
    """Why ``address`` may not get a test copy of the list (None: it may)."""
    record = ctx.store.record(address)
    suppressed = ctx.store.suppression(address)
    standing = policy.standing(record, lst.name, suppressed)
    if standing is policy.Standing.suppressed:
        if suppressed == "erased":
            return f"{address} was erased (a hash of it is kept so that it is never mailed)"
        if suppressed:
            return f"{address} is on the suppression list ({suppressed})"
        status = record.status if record is not None else None
        return f"{address} {'bounced' if status is SubscriberStatus.bounced else 'complained'}"
    if standing is policy.Standing.unsubscribed:
        assert record is not None  # standing says so
        if record.status is SubscriberStatus.unsubscribed:
            return f"{address} unsubscribed"
        return f"{address} unsubscribed from list {lst.name}"
    return None


def _reader(ctx: Context, lst: ListConfig, as_email: str | None) -> Subscriber:
    """Whose message the copies are: a sample reader with every section, or ``as_email``'s
    (their sections on this list and their name; the id stays the sample's, 0)."""
    if as_email is None:
        return Subscriber(email=SAMPLE_RECIPIENT.email, name=SAMPLE_RECIPIENT.name, id=0)
    email = normalize_email(as_email)
    record = ctx.store.record(email)
    if record is None:
        raise SubscriberError(f"--as: no subscriber {email}")
    membership = record.membership(lst.name)
    if membership is None:
        raise SubscriberError(
            f"--as: {email} is not on list {lst.name}", "name a reader of that list"
        )
    return Subscriber(email=record.email, name=record.name, sections=membership.sections, id=0)


async def send_proofs(
    ctx: Context,
    list_name: str | None,
    to: str | Iterable[str],
    *,
    as_email: str | None = None,
    subject_prefix: str = DEFAULT_PREFIX,
    now: Callable[[], datetime] = utcnow,
    transport: Transport | None = None,
) -> ProofReport:
    """Send test copies of a list's edition as it stands to ``to``; writes nothing to the
    store. Refuses (before sending anything) a bad address, one that left, a prefix that is
    not one line, and an edition with nothing for the reader."""
    lst = ctx.newsletter.get_list(list_name)
    prefix = check_prefix(subject_prefix)
    addresses = proof_addresses(to)
    refused = [why for why in (_refusal(ctx, lst, a) for a in addresses) if why]
    if refused:
        raise SubscriberError(
            "refused, nothing sent: " + "; ".join(refused),
            "nobody who left is mailed again: leave them out of --to",
        )
    started = now()
    edition = current_edition(ctx, lst, started, create=False)
    if edition is None:
        raise SelectionError(
            f"list {lst.name}: no articles for an edition",
            "run `digest fetch` first, or widen window_hours",
        )
    reader = _reader(ctx, lst, as_email)
    composer = Composer(ctx, edition, lst, started)
    template = composer.template(reader.sections)
    if template is None:
        raise SelectionError(
            f"--as: {reader.email} gets none of the sections in edition {edition.key}",
            "nothing would be sent to them",
        )
    slugs = tuple(s.slug for s in edition.for_sections(reader.sections))
    report = ProofReport(
        list=lst.name,
        edition=edition.key,
        reader="sample reader" if as_email is None else reader.email,
        sections=list(slugs),
        subject=one_line(prefix + subject_of(template)),
        notes=list(composer.notes.get(slugs, ())),
    )
    check = check_edition(composer)
    if check.errors:
        report.warnings.append(
            f"digest check finds {len(check.errors)} error(s) in this edition; `digest send` "
            f"would refuse it (first: {check.errors[0]})"
        )
    stale = stale_section_warning(ctx, lst.name)
    if stale:
        report.warnings.append(stale)
    signer = list_signer(ctx.settings, lst)
    messages = [_copy(composer, template, reader, a, prefix, signer) for a in addresses]
    transports = [transport] if transport is not None else make_transports(ctx, now)
    await _deliver(messages, transports, report)
    return report


def _copy(
    composer: Composer,
    template: MessageTemplate,
    reader: Subscriber,
    address: str,
    prefix: str,
    signer: DkimSigner | None,
) -> OutgoingMessage:
    """The reader's message, addressed to ``address``, as a test copy (signed if DKIM is on)."""
    personal = composer.message(
        Subscriber(email=address, name=reader.name, sections=reader.sections, id=0)
    )
    assert personal is not None  # the template exists, so the reader gets sections
    unique = uuid.uuid4().hex
    message_id = f"<test.{template.edition_key}.{template.list_name}.{unique}@{template.domain}>"
    message = as_test_copy(personal, template, prefix=prefix, message_id=message_id)
    return message if signer is None else signer.sign_message(message)


async def _deliver(
    messages: list[OutgoingMessage], transports: list[Transport], report: ProofReport
) -> None:
    """Each copy through the first transport that can be used; a relay that cannot be used
    leaves the copies not yet handed over to the next one."""
    pending = list(messages)
    problem: SendError | None = None
    for transport in transports:
        try:
            async with transport.session() as session:
                report.transport = getattr(transport, "label", transport.name)
                while pending:
                    result = await session.deliver(pending[0], before_data=lambda: None)
                    report.copies.append(
                        {
                            "to": pending.pop(0).recipient,
                            "state": result.state.value,
                            "code": result.code,
                            "reply": result.reply,
                        }
                    )
        except SendError as exc:
            problem = exc
        if not pending:
            return
    if problem is not None and not report.copies:
        raise problem
    for message in pending:
        report.copies.append(
            {
                "to": message.recipient,
                "state": DeliveryState.deferred.value,
                "code": None,
                "reply": str(problem) if problem else "not handed over",
            }
        )
