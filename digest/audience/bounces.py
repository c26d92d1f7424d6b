"""Bounces and complaints: read returned mail, say who failed and why. Pure but for reading the
mailbox.

``read_mailbox(path)`` yields the raw messages of a Maildir, an mbox file, one ``.eml`` file or
a folder of them. ``classify(raw)`` turns one message into ``Report`` values, one per recipient
the report names:

- **who**: a DSN's per-recipient fields (``Final-Recipient``, with ``Original-Recipient``
  where the final one is no mail address, e.g. X.400), else the bounce's own text (Postfix,
  Exim, qmail, Sendmail, Exchange, GroupWise, Yahoo, AOL, Notes, HTML-only bounces ...:
  our line patterns and Mailman's ``flufl.bounce`` detectors). The returned copy of the
  original message is cut off first: its ``To:`` is the list, not the reader who failed.
- **why**: a ``reason`` in sisimai's vocabulary, read from the text about that recipient and
  refined by the status code; ``REASONS`` maps each reason to ``hard`` (the address itself
  is dead), ``soft`` (any other failure) or ``ignore``.
- ``complaint``: an ARF (RFC 5965) feedback report; ``unsubscribe``: mail to the ``mailto:``
  List-Unsubscribe address carrying a token.

Each report carries what ties it to a delivery: the VERP token of the address the bounce came
back to (``bounces+<token>@domain``) and the returned copy's Message-ID. Whether a report is
trusted is decided by ``digest.pipeline``, which holds the ledger.

VERP tokens are the signed tokens of ``digest.audience.tokens`` over
(edition << 32 | subscriber, list) with purpose "bounce", re-spelled in lower-case base32
because some mail systems fold the case of local parts.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import html
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path

from digest.audience.tokens import make_token, read_token

# Reason -> outcome: the one table that decides what a report does. ``hard`` suppresses at
# once and is kept for a dead address; ``soft`` adds to the decaying score (enough of them in a
# row end in ``bounced`` too); ``ignore`` changes nothing.
REASONS: dict[str, str] = {
    "user-unknown": "hard",  # no such mailbox: 5.1.1, "user unknown", "no such user"
    "host-unknown": "hard",  # no such domain or no mail host for it: 5.1.2, 5.4.4
    "mailbox-full": "soft",  # 4.2.2 / 5.2.2, "over quota"
    "message-too-big": "soft",  # 5.2.3 / 5.3.4
    "suspended": "soft",  # the mailbox exists but is disabled for now: 5.2.1
    "blocked": "soft",  # policy, reputation, block lists, DMARC/SPF/DKIM: 5.7.x
    "spam-filtered": "soft",  # the content was taken for spam or a virus
    "relay-refused": "soft",  # "relay access denied": a mail system's setup, not the reader
    "mail-loop": "soft",  # 5.4.6, "too many hops"
    "expired": "soft",  # the queue gave up on a temporary failure: 4.4.7
    "system-error": "soft",  # the receiving system's trouble: 4.3.x, connection failures
    "undefined": "soft",  # a failure that says no more
    "delay-warning": "ignore",  # still being retried
    "auto-reply": "ignore",  # vacation and other automatic answers (RFC 3834)
    "not-a-bounce": "ignore",  # anything else, including a person forwarding a bounce
    "complaint": "complaint",  # ARF feedback report: unsubscribe and suppress
    "unsubscribe": "unsubscribe",  # mail to the List-Unsubscribe address
}

# Text first: the first wording that matches names the reason. Order matters: a loop or a size
# limit is said with words ("rejected", "denied") that would otherwise read as a policy block.
_TEXT_REASONS: list[tuple[str, str]] = [
    (
        "mail-loop",
        r"mail (forwarding )?loop|loops? (was |were )?detected|routing loop|too many hops|"
        r"too many (\"?received\"?|delivered-to) (headers|lines)|hop count exceeded|"
        r"loops back to myself",
    ),
    (
        "message-too-big",
        r"message (size )?(exceeds|too (big|large))|(message|mail) is too (big|large)|"
        r"size limit|exceeds (the )?(maximum |fixed )?(allowed )?(message )?size|"
        r"message length exceeds|too large for",
    ),
    (
        "mailbox-full",
        r"mail ?box (is )?full|mail ?box (size |storage )?(limit|quota)|over ?quota|"
        r"quota (exceeded|violation|full)|exceed(ed|s)? (the |his |her |their )?(storage|quota|"
        r"mailbox)|insufficient (disk )?(space|storage)|disk quota|not enough (disk )?space|"
        r"storage allocation|mailbox has exceeded|user has exceeded|is full",
    ),
    (
        "host-unknown",
        r"host (or domain name )?not found|domain (name )?not found|no such domain|"
        r"unknown (host|domain)|host unknown|unrouteable (mail )?domain|\bno mx\b|"
        r"name service error|domain (does not|doesn't|did not) exist|dns (lookup )?(error|"
        r"failure)|hostname lookup failed|unresolvable|host name lookup failure|"
        r"no (valid )?(mx|mail exchanger|route to host)|domain (is )?(invalid|unknown)",
    ),
    (
        "suspended",
        r"account (has been |is )?(disabled|suspended|deactivated|inactive|blocked|frozen)|"
        r"mail ?box (is |has been )?(disabled|inactive|suspended|deactivated)|"
        r"account is locked|temporarily (disabled|deactivated)",
    ),
    (
        "user-unknown",
        r"user unknown|unknown user|no such (user|mailbox|recipient|address|person|account)|"
        r"(user|mail ?box|address|recipient|account|addressee)( name)? (does not|doesn't|did "
        r"not|do not) exist|does not exist|\bnot exist|unknown (local[- ]part|recipient|address|"
        r"mailbox|alias|user)|invalid (recipient|mailbox|address|user|e-?mail address)|"
        r"mail ?box (unavailable|not found)|(user|recipient|address|addressee|mailbox|"
        r"account) (was )?not found|no mailbox|not our customer|no longer (active|available|"
        r"valid|in use|with)|discontinued|not listed in|couldn't be found|wasn't found|"
        r"bad destination|unknown or illegal alias|"
        r"address is (possibly |probably )?(incorrect|wrong)|"
        r"is not a valid|addressee unknown|(recipient|user) name is not recognized|"
        r"doesn't have an? .{0,40}account|does not have an? .{0,40}account|no account|"
        r"non-?existent|not a known user|invalid address|unknown recipient|bad address|"
        r"address (is )?unknown|no user (by that name|with that name)|user not known|"
        r"not a valid (user|mailbox|recipient)|recipient (is )?invalid|unknown address|"
        r"unrecogni[sz]ed o/r name|o/r name unknown",
    ),
    (
        "relay-refused",
        r"relay(ing)? (access )?(denied|not permitted|prohibited|not allowed|refused)|"
        r"not permitted to relay|unable to relay|we do not relay|relay not permitted|"
        r"no relaying|not a gateway|relaying (is )?(denied|disallowed)",
    ),
    (
        "spam-filtered",
        r"spam|junk mail|bulk (e-?mail )?filter|content (filter|rejected)|unsolicited|"
        r"looks like (spam|junk)|virus|malware|message (was )?(classified|identified) as",
    ),
    (
        "blocked",
        r"blocked|black ?list|block ?list|dnsbl|\brbl\b|reputation|dmarc|\bspf\b|\bdkim\b|"
        r"not authori[sz]ed|access denied|policy|banned|domain filter|filtered|"
        r"not accepting (mail|messages|e-?mail)",
    ),
    (
        "expired",
        r"expired|retry time(out)? (not reached|exceeded)|too long in (the )?queue|"
        r"in the queue too long|could not be delivered (for|within) \d+|for past \d+ (days|hours)|"
        r"cannot send message for \d+|giving up|deferred for too long|message timed out|"
        r"delivery time expired|undelivered for \d+|retry timeout|queue period|"
        r"not (been )?delivered within \d+|not responding",
    ),
    (
        "system-error",
        r"system error|internal (server )?error|mailer error|local (configuration )?error|"
        r"i/o error|insufficient (system )?resources|server (is )?(busy|error|unavailable)|"
        r"connection (refused|timed out|reset|lost|closed)|timed out|temporary (failure|error|"
        r"problem)|try again later|temporarily unavailable|service unavailable|"
        r"lost connection|network error|(cannot|could not|unable to) (connect|establish)|"
        r"mail system (error|problem)|configuration error",
    ),
]
_REASON_PATTERNS = [(reason, re.compile(p, re.I)) for reason, p in _TEXT_REASONS]
# Wording that says only that the receiver would not take the message: the status code, where
# there is one, says why.
_GENERIC_REFUSAL = re.compile(
    r"rejected|refused|denied|not accepted|not allowed|administrative prohibition", re.I
)

# Enhanced status codes (RFC 3463) by subject.detail, where the text says nothing it knows.
_STATUS_REASONS = {
    "1.0": "user-unknown",  # "other address status": the address, not the message
    "1.1": "user-unknown",
    "1.3": "user-unknown",
    "1.6": "user-unknown",
    "1.2": "host-unknown",
    "1.10": "host-unknown",
    "4.4": "host-unknown",
    "2.1": "suspended",
    "2.2": "mailbox-full",
    "2.3": "message-too-big",
    "3.4": "message-too-big",
    "4.6": "mail-loop",
    "4.7": "expired",
    "4.1": "expired",
    "4.2": "expired",
    "7.1": "blocked",
}
_STATUS_CLASSES = {"7": "blocked", "3": "system-error", "5": "system-error", "6": "system-error"}


def reason_for(text: str, status: str | None) -> str:
    """The reason a failure's own words give, refined by its status code where they are
    silent; ``undefined`` when neither says."""
    for reason, pattern in _REASON_PATTERNS:
        if pattern.search(text):
            return reason
    if status:
        _, _, rest = status.partition(".")
        if rest in _STATUS_REASONS:
            return _STATUS_REASONS[rest]
        if rest.split(".")[0] in _STATUS_CLASSES:
            return _STATUS_CLASSES[rest.split(".")[0]]
    if _GENERIC_REFUSAL.search(text):
        return "blocked"
    return "undefined"


def outcome(reason: str, status: str | None = None) -> str:
    """``hard``, ``soft``, ``ignore``, ``complaint`` or ``unsubscribe`` (see ``REASONS``).
    A 4.x.x status says the receiver itself was not sure: never hard."""
    result = REASONS[reason]
    if result == "hard" and status and status.startswith("4"):
        return "soft"
    return result


_STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_ADDRESS = re.compile(
    r"(?<![A-Za-z0-9.!#$%&'*+/=?^_`{|}~-])"
    r"([A-Za-z0-9!#$%&'*+/=?^_`{|}~-][A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]*"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|delivery (status notification|failure|has failed|failed|"
    r"notification|problem|report)|failure (notice|delivery)|mail delivery failed|"
    r"mail system error|non remis|could not be delivered|mail failure|delivery status|"
    r"returning message|email delivery failure|недоставл|not delivered|nondeliverable|"
    r"delivery error|message status|returned to sender|unzustellbar|rejected|"
    r"delivery unsuccessful|non-?delivery|bounce",
    re.I,
)
_DAEMON_FROM = re.compile(
    r"mailer-daemon|postmaster|mail delivery (subsystem|system)|mail ?delivery|mdaemon|"
    r"mail administrator|system administrator|mail ?router|smtp gateway|mail server",
    re.I,
)
_COPY_MARKERS = re.compile(
    r"^\s*(-+ ?(below this line is a copy|this is a copy of|original message|the original "
    r"message|included message|returned message|message (text|headers) follow)|"
    r"original message follows|(a )?copy of the original message|"
    r"-+ ?(start|begin) of (returned|forwarded|original)|the original message (was|is) "
    r"(attached|included|as follows)|"
    r"content-type: (message/rfc822|text/rfc822-headers)|return-path:|received:\s*from|"
    r"--- ?(the )?header of the original message|unsent message below|"
    r"-+ ?original message header)",
    re.I | re.M,
)
_DELAY_WORDS = re.compile(
    r"\bdelayed\b|delivery delay|still being retried|will (keep|continue) trying|"
    r"will (retry|be retried|try again)|not yet been delivered|could not send message for past|"
    r"is being retried|has not yet been delivered|delayed mail|delay notification",
    re.I,
)
_AUTO_SUBJECT = re.compile(
    r"^(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|away\b|"
    r"vacation|abwesenheit|absence|on leave)",
    re.I,
)
_UNSUB_SUBJECT = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_-]{16,120})\b", re.I)
_VERP = re.compile(r"\+([a-z2-7]{20,110})@", re.I)
_VERP_HEADERS = (
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "Original-Recipient",
    "To",
)
# A line of the report that quotes the returned message's headers ("Your message To: ..."),
# which names the list, never the reader who failed.
_QUOTED_HEADER = re.compile(
    r"^\s*(>\s*)?(to|cc|bcc|from|sender|reply-to|return-path|subject|sent|date|message-id|"
    r"in-reply-to|references|received|envelope-from|x-[a-z-]+)\s*:",
    re.I,
)
_DAEMON_LOCAL = re.compile(r"^(mailer-daemon|postmaster|double-bounce|nobody|root|abuse)$", re.I)


class BounceParseError(ValueError):
    """A file that is no mail message at all."""


@dataclass(frozen=True)
class Report:
    reason: str  # a key of REASONS
    recipient: str | None = None
    original_recipient: str | None = None  # the DSN's Original-Recipient, when it differs
    status: str | None = None
    diagnostic: str = ""
    verp: str | None = None  # the VERP token the report came back to
    token: str | None = None  # an unsubscribe token (mailto: List-Unsubscribe)
    message_id: str | None = None  # Message-ID of the returned original
    key: str = ""

    @property
    def outcome(self) -> str:
        return outcome(self.reason, self.status)

    @property
    def is_failure(self) -> bool:
        return self.outcome in ("hard", "soft")


# -- VERP -------------------------------------------------------------------------------------


def verp_address(
    secret: bytes, bounce_address: str, edition_id: int, subscriber_id: int, list_name: str
) -> str:
    """``local+<token>@domain`` for one delivery, from ``bounce_address`` (local@domain)."""
    local, _, domain = bounce_address.rpartition("@")
    token = make_token(secret, (edition_id << 32) | subscriber_id, list_name, "bounce")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    return f"{local}+{base64.b32encode(raw).decode().rstrip('=').lower()}@{domain}"


def read_verp(secret: bytes, token: str) -> tuple[int, int, str] | None:
    """``(edition_id, subscriber_id, list_name)`` of a genuine VERP token, else None."""
    try:
        raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8))
    except ValueError:
        return None
    parsed = read_token(secret, base64.urlsafe_b64encode(raw).decode().rstrip("="), "bounce")
    if parsed is None:
        return None
    packed, list_name = parsed
    return packed >> 32, packed & 0xFFFFFFFF, list_name


# -- reading mailboxes ------------------------------------------------------------------------


def read_mailbox(path: Path) -> Iterator[tuple[str, bytes | OSError]]:
    """(name, raw bytes) of every message in a Maildir, an mbox, an .eml file or a folder; a
    file of a folder that cannot be read comes as (name, the error), and the rest follow."""
    if path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir():
        box = mailbox.Maildir(path, factory=None, create=False)
        for key in sorted(box.keys()):
            yield f"{path}/{key}", box.get_bytes(key)
    elif path.is_dir():
        for child in sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".eml", ".msg")
        ):
            try:
                yield str(child), child.read_bytes()
            except OSError as exc:
                yield str(child), exc
    elif path.is_file() and path.read_bytes()[:5] == b"From ":
        mbox = mailbox.mbox(path, create=False)
        for key in mbox.iterkeys():  # iterating the box itself yields messages, not keys
            yield f"{path}#{key}", mbox.get_bytes(key)
    elif path.is_file():
        yield str(path), path.read_bytes()
    else:
        raise FileNotFoundError(path)


# -- classification ---------------------------------------------------------------------------


def parse(raw: bytes) -> Message:
    """The message; ``BounceParseError`` when the bytes are no mail message at all."""
    # Some bounces use bare CR line ends; the parser only splits on LF and CRLF.
    text = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    msg = message_from_bytes(text, policy=policy.compat32)
    if not msg.keys():
        raise BounceParseError("no mail headers: not a mail message")
    return msg


def classify(raw: bytes) -> list[Report]:
    """What one message reports: one Report per recipient it names, or one for the message."""
    msg = parse(raw)
    digest_key = hashlib.sha256(raw).hexdigest()
    verp = _verp_token(msg)
    original_id = _original_message_id(msg)
    reports = (
        _arf(msg)
        or _dsn(msg)
        or _unsubscribe(msg)
        or _text_bounce(msg)
        or [Report(_other_reason(msg))]
    )
    out: list[Report] = []
    seen: set[str] = set()
    for r in reports:
        who = (r.recipient or "").lower()
        if who in seen:
            continue  # one recipient named twice (DSNs repeat a recipient per attempt)
        seen.add(who)
        key = hashlib.sha256(f"{digest_key}\x00{who}".encode()).hexdigest()
        out.append(
            replace(
                r,
                # A VERP token quoted back (some reports name the envelope sender) is a
                # token: it stays out of the record and the report.
                diagnostic=_VERP.sub("+***@", " ".join(r.diagnostic.split()))[:500],
                verp=verp,
                message_id=original_id,
                key=key,
            )
        )
    return out


def _header(msg: Message, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    try:
        from email.header import decode_header, make_header

        return str(make_header(decode_header(str(value))))
    except Exception:  # undecodable words: keep the raw text
        return str(value)


def _verp_token(msg: Message) -> str | None:
    for name in _VERP_HEADERS:
        for value in msg.get_all(name) or ():
            found = _VERP.search(str(value))
            if found:
                return found.group(1).lower()
    return None


def _decoded(part: Message) -> bytes:
    """A part's body, transfer-decoded: b"" for a multipart (which has none of its own)."""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _text(part: Message) -> str:
    charset = part.get_content_charset() or "utf-8"
    try:
        return _decoded(part).decode(charset, "replace")
    except LookupError:  # a charset Python does not know
        return _decoded(part).decode("latin-1")


def _original_message_id(msg: Message) -> str | None:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822" and part.is_multipart():
            inner = part.get_payload(0)
            if isinstance(inner, Message) and inner.get("Message-ID"):
                return str(inner["Message-ID"]).strip()
        elif ctype == "text/rfc822-headers":
            found = re.search(rb"^Message-ID:\s*(<[^>\s]+>)", _decoded(part), re.I | re.M)
            if found:
                return found.group(1).decode("ascii", "replace")
    # A returned copy pasted into the text, or its headers quoted by the report: the ledger
    # look-up that uses it proves whether digest sent it.
    quoted = re.search(r"^\s*Message-ID:\s*(<[^>\s]+>)", _report_text(msg, whole=True), re.I | re.M)
    return quoted.group(1) if quoted else None


def _arf(msg: Message) -> list[Report] | None:
    for part in msg.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        fields = _fields(part)
        recipient = fields.get("original-rcpt-to") or fields.get("removal-recipient")
        if not _address(recipient):
            # A complaint is about the message as delivered: its To: is the reader (feedback
            # loops often redact it; the Message-ID still names the delivery).
            recipient = _original_header(msg, "To")
        return [
            Report(
                "complaint",
                _address(recipient),
                diagnostic=f"feedback-type {fields.get('feedback-type', 'abuse')}",
            )
        ]
    return None


def _dsn(msg: Message) -> list[Report] | None:
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = _dsn_blocks(part)
        text = _report_text(msg)
        reports = [r for r in (_dsn_report(b, msg, text) for b in blocks[1:] or blocks) if r]
        if reports:
            return reports
    return None


def _dsn_blocks(part: Message) -> list[dict[str, str]]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [
            {k.lower(): str(v) for k, v in block.items()}
            for block in payload
            if isinstance(block, Message)
        ]
    text = _decoded(part)
    return [_field_block(b) for b in re.split(rb"\n\s*\n", text) if b.strip()]


def _dsn_report(fields: dict[str, str], msg: Message, text: str) -> Report | None:
    action = fields.get("action", "").strip().lower()
    final = _address(fields.get("final-recipient"))
    original = _address(fields.get("original-recipient"))
    recipient = final or original
    if not action and not recipient:
        return None
    if recipient is None:
        return None  # a recipient block that names nobody a mail address reaches
    status = (_STATUS.search(fields.get("status", "")) or [None, None])[1]
    diagnostic = " ".join(fields.get("diagnostic-code", "").split())
    also = original if original and original.lower() != recipient.lower() else None
    if action in ("delayed", "relayed", "delivered", "expanded"):
        reason = "delay-warning" if action == "delayed" else "not-a-bounce"
        return Report(reason, recipient, also, status, diagnostic)
    if status and status.startswith("2"):
        return Report("not-a-bounce", recipient, also, status, diagnostic)
    if status is None or status.endswith(".0.0"):
        status = (_STATUS.search(diagnostic) or [status, status])[1]
    reason = reason_for(diagnostic or _near(text, recipient), status)
    if reason == "undefined":
        reason = reason_for(text, status)
    return Report(reason, recipient, also, status, diagnostic)


def _near(text: str, address: str) -> str:
    """The lines of a report about one address: from the line naming it up to the next line
    naming another address (at most eight lines)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if address.lower() in line.lower() and not _QUOTED_HEADER.match(line):
            block = [line]
            for follow in lines[i + 1 : i + 9]:
                if _ADDRESS.search(follow) and address.lower() not in follow.lower():
                    break
                block.append(follow)
            return "\n".join(block)
    return ""


def _unsubscribe(msg: Message) -> list[Report] | None:
    found = _UNSUB_SUBJECT.search(_header(msg, "Subject"))
    if found is None:
        return None
    return [Report("unsubscribe", _address(_header(msg, "From")), token=found.group(1))]


def _text_bounce(msg: Message) -> list[Report] | None:
    """A bounce without a DSN part: who failed and why, from its own text."""
    subject, sender = _header(msg, "Subject"), _header(msg, "From")
    if subject.lower().startswith(("fwd:", "fw:")):
        return None  # a person forwarding a bounce is not the mail system reporting one
    reported = msg.get_content_type() == "multipart/report"  # a DSN that named nobody
    if not (reported or _BOUNCE_SUBJECT.search(subject) or _DAEMON_FROM.search(sender)):
        return None
    text = _report_text(msg)
    if not text.strip():
        return None
    temporary, permanent = _flufl(msg)
    status = (_STATUS.search(text) or [None, None])[1]
    overall = reason_for(text, status)
    if overall == "undefined" and not (temporary or permanent):
        if status is None and not _BOUNCE_SUBJECT.search(subject):
            return None
        if status and status.startswith("2"):
            return None  # a transcript of what went well (a postmaster's notice)
    delay = (
        subject.lower().startswith("warning")
        or (temporary and not permanent)
        or (_DELAY_WORDS.search(subject) and REASONS[overall] != "hard")
    )
    addresses = _named(text, msg, [*sorted(permanent), *sorted(temporary)])
    if not addresses:
        reason = "delay-warning" if delay else overall
        return [Report(reason, None, None, status, _reason_line(text))]
    reports = []
    for address in addresses:
        near = _near(text, address)
        own_status = (_STATUS.search(near) or [None, None])[1] or status
        reason = reason_for(near, own_status) if near else "undefined"
        if reason == "undefined":
            reason = overall
        if delay and address.lower() not in {
            a.decode("ascii", "replace").lower() for a in permanent
        }:
            reason = "delay-warning"
        line = _reason_line(near) or _reason_line(text)
        reports.append(Report(reason, address, None, own_status, line))
    return reports


def _reason_line(text: str) -> str:
    """The line that best says why: one with a known wording or a status code."""
    for line in text.splitlines():
        if _QUOTED_HEADER.match(line):
            continue
        if any(p.search(line) for _, p in _REASON_PATTERNS) or _STATUS.search(line):
            return line.strip()
    return ""


# Lines on which an address is the one that failed: alone on its line (Exim, Exchange,
# GroupWise, Notes), before a colon (Postfix, qmail, Yahoo), in an RCPT command (Sendmail),
# after "rfc822;" (X.400 and Novell gateways), or beside a failure's own wording.
_LISTED = re.compile(
    r"^\s*[\"']?<?(?:mailto:)?(?P<a>[^\s<>@\"'()]+@[A-Za-z0-9.-]+)>?[\"']?\s*"
    r"(?:$|:|\.\.\.|;|,|\(|<|\[| on | - |-{2}|\s{2,})",
)
_RCPT = re.compile(r"rcpt to:?\s*<?([^\s<>]+@[A-Za-z0-9.-]+)", re.I)
_WRAPPED = re.compile(r"rfc-?822\s*;\s*<?([^\s<>;]+@[A-Za-z0-9.-]+)", re.I)
_TOLD = re.compile(
    r"(deliver\w*|sen[dt]\w*|mail(ed)?|message|transmit\w*|forward\w*)( (your|the|this) "
    r"(mail|message|e-?mail))? to\s*:?\s*<?"
    r"(?P<a>[^\s<>,;\"']+@[A-Za-z0-9.-]+)|"
    r"(recipient|address|user|addressee|mailbox)( address)?\s*[:=]?\s*[\"']?<"
    r"(?P<b>[^\s<>]+@[A-Za-z0-9.-]+)>",
    re.I,
)


_CONTACT = re.compile(
    r"contact|assistance|support|help|information|questions|write to|visit|https?://", re.I
)


def _named(text: str, msg: Message, hints: list[bytes]) -> list[str]:
    """The failed recipients a bounce's text names, in the order it names them."""
    # The reporter and the bounce's own addressee (our bounce mailbox) are not recipients.
    own = {
        a.lower()
        for name in ("From", "Sender", "Reply-To", "Return-Path", "To")
        for a in _ADDRESS.findall(str(msg.get(name, "")))
    }
    found: list[str] = []

    def take(address: str | None) -> None:
        if not address:
            return
        address = address.strip(".,;:'\"()[]<>")
        match = _ADDRESS.fullmatch(address)
        if match is None:
            return
        local = address.rpartition("@")[0]
        if (
            address.lower() in own
            or _DAEMON_LOCAL.match(local)
            or address.lower() in (a.lower() for a in found)
        ):
            return
        found.append(address)

    # Exim and Google name the failed recipients in a header of the bounce itself.
    for value in msg.get_all("X-Failed-Recipients") or ():
        for address in _ADDRESS.findall(str(value)):
            take(address)
    lines = [ln for ln in text.splitlines() if not _QUOTED_HEADER.match(ln)]
    for line in lines:
        for pattern in (_RCPT, _WRAPPED):
            for m in pattern.finditer(line):
                take(m.group(1))
        listed = _LISTED.match(line)
        if listed:
            take(listed.group("a"))
            continue  # the line is about that address, whatever else it quotes
        for m in _TOLD.finditer(line):
            take(m.group("a") or m.group("b"))
        first = next((m for m in _ADDRESS.finditer(line) if not _after_from(line, m)), None)
        if first and (_STATUS.search(line) or any(p.search(line) for _, p in _REASON_PATTERNS)):
            take(first.group(1))
    own_text = "\n".join(lines).lower()
    for hint in hints:
        # A detector's find counts where the report's own text names it (AOL names the
        # screen name alone).
        address = hint.decode("ascii", "replace")
        local = address.rpartition("@")[0].lower()
        if address.lower() in own_text or re.search(rf"^\s*{re.escape(local)}\s*$", own_text, re.M):
            take(address)
    if not found:
        # No line says it outright: the first stranger's address in the report's own text,
        # but for the addresses a report gives to write to.
        for line in lines:
            if not _CONTACT.search(line):
                for m in _ADDRESS.finditer(line):
                    if not _after_from(line, m):
                        take(m.group(1))
            if found:
                break
    return found


def _after_from(line: str, found: re.Match[str]) -> bool:
    """Whether an address is the sender's, as in "not accepting mail from <address>"."""
    return re.search(r"\bfrom\s*:?\s*<?$", line[: found.start()], re.I) is not None


def _flufl(msg: Message) -> tuple[frozenset[bytes], frozenset[bytes]]:
    """(temporary, permanent) failed addresses by Mailman's detectors, run on the report
    without its returned copy; a detector that trips on odd input finds nothing."""
    from flufl.bounce import all_failures

    try:
        return all_failures(_without_original(msg))
    except Exception:
        return frozenset(), frozenset()


def _without_original(msg: Message) -> Message:
    """A copy of the message without the returned original (attached or pasted below)."""
    stripped = copy.deepcopy(msg)
    for part in stripped.walk():
        if part.is_multipart() and part.get_content_maintype() == "multipart":
            payload = part.get_payload()
            if isinstance(payload, list):
                part.set_payload(
                    [p for p in payload if not (isinstance(p, Message) and _is_returned_copy(p))]
                )
        elif part.get_content_maintype() == "text":
            text = _text(part)
            cut = _COPY_MARKERS.search(text)
            if cut:
                del part["Content-Transfer-Encoding"]
                part.set_payload(text[: cut.start()].encode("utf-8", "replace").decode("latin-1"))
    return stripped


def _is_returned_copy(part: Message) -> bool:
    return part.get_content_type() in ("message/rfc822", "text/rfc822-headers") or (
        part.get_content_maintype() == "message"
        and part.get_content_type() != "message/delivery-status"
    )


def _own_parts(msg: Message) -> Iterator[Message]:
    """The message's parts, without descending into a returned message."""
    yield msg
    if msg.is_multipart() and msg.get_content_maintype() == "multipart":
        for part in msg.get_payload():
            if isinstance(part, Message) and not _is_returned_copy(part):
                yield from _own_parts(part)


def _report_text(msg: Message, *, whole: bool = False) -> str:
    """The human-readable part of a bounce, without the returned copy of the original
    (``whole``: with it); an HTML-only bounce is read as text."""
    chosen = None
    for wanted in ("text/plain", "text/html"):
        for part in _own_parts(msg):
            if part.get_content_type() != wanted:
                continue
            if part.get("Content-Disposition", "").lower().startswith("attachment"):
                continue
            chosen = part
            break
        if chosen is not None:
            break
    if chosen is None:
        return ""
    text = _text(chosen)
    if chosen.get_content_type() == "text/html":
        text = _html_text(text)
    if whole:
        return text
    cut = _COPY_MARKERS.search(text)
    return text[: cut.start()] if cut else text


def _html_text(markup: str) -> str:
    markup = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", " ", markup)
    markup = re.sub(r"(?i)<br\s*/?>|</(p|div|tr|li|h\d|table)>", "\n", markup)
    text = html.unescape(re.sub(r"<[^>]+>", " ", markup)).replace("\xa0", " ")
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def _other_reason(msg: Message) -> str:
    auto = _header(msg, "Auto-Submitted").lower()
    if (
        auto.startswith("auto-replied")
        or msg.get("X-Autoreply")
        or msg.get("X-Autorespond")
        or _header(msg, "Precedence").lower() == "auto_reply"
        or _AUTO_SUBJECT.search(_header(msg, "Subject"))
    ):
        return "auto-reply"
    return "not-a-bounce"


def _fields(part: Message) -> dict[str, str]:
    payload = part.get_payload()
    if isinstance(payload, list):
        merged: dict[str, str] = {}
        for block in payload:
            if isinstance(block, Message):
                merged.update({k.lower(): str(v) for k, v in block.items()})
        return merged
    return _field_block(_decoded(part))


def _field_block(text: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    last = None
    for line in text.decode("utf-8", "replace").splitlines():
        if line[:1] in (" ", "\t") and last:
            fields[last] += " " + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            last = name.strip().lower()
            fields[last] = value.strip()
    return fields


def _original_header(msg: Message, name: str) -> str:
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822" and part.is_multipart():
            inner = part.get_payload(0)
            return str(inner.get(name, "")) if isinstance(inner, Message) else ""
        if part.get_content_type() == "text/rfc822-headers":
            fields = _field_block(_decoded(part))
            return fields.get(name.lower(), "")
    return ""


def _address(value: str | None) -> str | None:
    """The mail address of a DSN recipient field or a header: ``rfc822; a@b`` or ``<a@b>``;
    None for another address type (``x400; /S=...``) or Exchange's IMCEA wrapper of one."""
    if not value:
        return None
    kind, sep, rest = value.partition(";")
    if sep and "@" not in kind:
        if kind.strip().lower() not in ("rfc822", ""):
            return None
        value = rest
    found = _ADDRESS.search(value)
    if found is None or found.group(1).upper().startswith("IMCEA"):
        return None
    return found.group(1)
