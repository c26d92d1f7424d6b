"""Bounces and complaints: read returned mail, say what each report means. Pure but for reading
the mailbox.

``read_mailbox(path)`` yields the raw messages of a Maildir, an mbox file, one ``.eml`` file or
a folder of them. ``classify(raw)`` turns one message into ``Report`` values:

- ``hard``: the address does not work (RFC 3464 ``failed`` with 5.1.x or 5.2.1, or the
  usual "user unknown" wording of non-standard bounces) -> suppress;
- ``soft``: a failure that may pass (mailbox full, 4.x.x, policy or spam blocks) -> counted;
- ``complaint``: an ARF (RFC 5965) feedback report -> unsubscribe and suppress;
- ``unsubscribe``: mail to the ``mailto:`` List-Unsubscribe address carrying a token;
- ``delay``, ``auto-reply``, ``other``: not failures; nothing changes.

Each report carries what identifies the delivery: the VERP token of the address the bounce
came back to (``bounces+<token>@domain``, exact), the failed recipient's address, and the
returned copy's Message-ID (kept for the record).

VERP tokens are the signed tokens of ``digest.audience.tokens`` over
(edition << 32 | subscriber, list) with purpose "bounce", re-spelled in lower-case base32
because some mail systems fold the case of local parts.
"""

from __future__ import annotations

import base64
import hashlib
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path

from digest.audience.tokens import make_token, read_token

HARD_STATUS = re.compile(r"^5\.(1\.\d+|2\.1|0\.0)$")
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_ADDRESS = re.compile(r"<?([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)>?")
_HARD_WORDS = re.compile(
    r"user unknown|unknown user|no such user|does not exist|doesn't exist|not exist|"
    r"unknown (local[- ]part|recipient|address)|invalid (recipient|mailbox|address)|"
    r"mailbox (unavailable|not found|does not exist)|recipient (address )?rejected|"
    r"address rejected|no mailbox|account (has been )?disabled|no longer (active|available)|"
    r"host (or domain name )?not found|domain not found|no mx|malformed (recipient )?address|"
    r"bad destination|unrouteable|unknown or illegal alias|wasn't found|"
    r"couldn't be found|not our customer|is not a valid|not listed in|account is locked",
    re.I,
)
_SOFT_WORDS = re.compile(
    r"mailbox (is )?full|quota|over ?quota|insufficient|temporar|"
    r"try again|blocked|spam|rejected",
    re.I,
)
_DELAY_WORDS = re.compile(
    r"delayed|delay|still being retried|will (keep|continue) trying|"
    r"will retry|not yet been delivered|could not send message for past",
    re.I,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|delivery (status notification|failure|has failed|failed|"
    r"notification)|failure notice|mail delivery failed|mail system error|non remis|"
    r"could not be delivered|mail failure|delivery status|returning message|"
    r"email delivery failure|недоставл|not delivered",
    re.I,
)
_DAEMON_FROM = re.compile(
    r"mailer-daemon|postmaster|mail delivery (subsystem|system)|"
    r"mail ?delivery|mdaemon|mail administrator",
    re.I,
)
_COPY_MARKERS = re.compile(
    r"^(-+ ?(below this line is a copy|this is a copy of|original message|the original "
    r"message|included message)|original message follows|------ ?this is a copy|"
    r"content-type: (message/rfc822|text/rfc822-headers)|return-path:)",
    re.I | re.M,
)
_AUTO_SUBJECT = re.compile(
    r"^(auto(matic)?[ -]?(reply|response)|out of (the )?office|away|"
    r"vacation|abwesenheit|absence)",
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


@dataclass(frozen=True)
class Report:
    kind: str  # hard, soft, complaint, unsubscribe, delay, auto-reply, other
    recipient: str | None = None
    status: str | None = None
    diagnostic: str = ""
    verp: str | None = None  # the VERP token the report came back to
    token: str | None = None  # an unsubscribe token (mailto: List-Unsubscribe)
    message_id: str | None = None  # Message-ID of the returned original
    key: str = ""

    @property
    def is_failure(self) -> bool:
        return self.kind in ("hard", "soft")


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


def read_mailbox(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, raw bytes) of every message in a Maildir, an mbox, an .eml file or a folder."""
    if path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir():
        box = mailbox.Maildir(path, factory=None, create=False)
        for key in sorted(box.keys()):
            yield f"{path}/{key}", box.get_bytes(key)
    elif path.is_dir():
        for child in sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".eml", ".msg")
        ):
            yield str(child), child.read_bytes()
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
    # Some bounces use bare CR line ends; the parser only splits on LF and CRLF.
    text = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return message_from_bytes(text, policy=policy.compat32)


def classify(raw: bytes) -> list[Report]:
    """What one message reports: one Report per failed recipient, or one for the message."""
    msg = parse(raw)
    digest_key = hashlib.sha256(raw).hexdigest()
    verp = _verp_token(msg)
    original_id = _original_message_id(msg)
    reports = (
        _arf(msg)
        or _dsn(msg)
        or _unsubscribe(msg)
        or _plain_bounce(msg)
        or [Report(_other_kind(msg))]
    )
    out = []
    for r in reports:
        key = hashlib.sha256(f"{digest_key}\x00{r.recipient or ''}".encode()).hexdigest()
        out.append(
            Report(
                r.kind,
                r.recipient,
                r.status,
                r.diagnostic.strip()[:500],
                verp,
                r.token,
                original_id,
                key,
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


def _parts(msg: Message) -> list[Message]:
    return list(msg.walk())


def _decoded(part: Message) -> bytes:
    """A part's body, transfer-decoded: b"" for a multipart (which has none of its own)."""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _original_message_id(msg: Message) -> str | None:
    for part in _parts(msg):
        ctype = part.get_content_type()
        if ctype == "message/rfc822" and part.is_multipart():
            inner = part.get_payload(0)
            if isinstance(inner, Message) and inner.get("Message-ID"):
                return str(inner["Message-ID"]).strip()
        elif ctype == "text/rfc822-headers":
            payload = _decoded(part)
            found = re.search(rb"^Message-ID:\s*(<[^>\s]+>)", payload, re.I | re.M)
            if found:
                return found.group(1).decode("ascii", "replace")
    return None


def _arf(msg: Message) -> list[Report] | None:
    for part in _parts(msg):
        if part.get_content_type() != "message/feedback-report":
            continue
        fields = _fields(part)
        recipient = fields.get("original-rcpt-to") or fields.get("removal-recipient")
        if not recipient:
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
    for part in _parts(msg):
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = _dsn_blocks(part)
        reports = [r for r in (_dsn_report(b, msg) for b in blocks[1:] or blocks) if r]
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


def _dsn_report(fields: dict[str, str], msg: Message) -> Report | None:
    action = fields.get("action", "").strip().lower()
    recipient = _address(fields.get("final-recipient") or fields.get("original-recipient"))
    if not action and not recipient:
        return None
    status = (_STATUS.search(fields.get("status", "")) or [None, None])[1]
    diagnostic = " ".join(fields.get("diagnostic-code", "").split())
    if action in ("delayed", "relayed", "delivered", "expanded"):
        return Report("delay" if action == "delayed" else "other", recipient, status, diagnostic)
    if status is None:
        status = (_STATUS.search(diagnostic) or [None, None])[1]
    return Report(
        _failure_kind(status, diagnostic + " " + _header(msg, "Subject")),
        recipient,
        status,
        diagnostic,
    )


def _failure_kind(status: str | None, text: str) -> str:
    if status and status.startswith("2"):
        return "other"
    if status and status.startswith("4"):
        return "soft"
    if status and HARD_STATUS.match(status) and status != "5.0.0":
        return "hard"
    if _HARD_WORDS.search(text):
        return "hard"
    return "soft"


def _unsubscribe(msg: Message) -> list[Report] | None:
    found = _UNSUB_SUBJECT.search(_header(msg, "Subject"))
    if found is None:
        return None
    return [Report("unsubscribe", _address(_header(msg, "From")), token=found.group(1))]


def _plain_bounce(msg: Message) -> list[Report] | None:
    subject, sender = _header(msg, "Subject"), _header(msg, "From")
    if subject.lower().startswith(("fwd:", "fw:")):
        return None  # a person forwarding a bounce is not the mail system reporting one
    if not (_BOUNCE_SUBJECT.search(subject) or _DAEMON_FROM.search(sender)):
        return None
    body = _report_text(msg)
    if not body.strip():
        return None
    if subject.lower().startswith("warning") or (
        _DELAY_WORDS.search(subject) and not _HARD_WORDS.search(body)
    ):
        return [Report("delay", _failed_address(body, msg), diagnostic=subject)]
    if (
        not _BOUNCE_SUBJECT.search(subject)
        and not _STATUS.search(body)
        and not _HARD_WORDS.search(body)
    ):
        return None
    status = (_STATUS.search(body) or [None, None])[1]
    line = next(
        (ln for ln in body.splitlines() if _HARD_WORDS.search(ln) or _STATUS.search(ln)), ""
    )
    return [
        Report(
            _failure_kind(status, body), _failed_address(body, msg), status, " ".join(line.split())
        )
    ]


def _report_text(msg: Message) -> str:
    """The human-readable part of a bounce, without the returned copy of the original."""
    for part in _parts(msg):
        if part.get_content_maintype() == "multipart" or part.get_content_type() != "text/plain":
            continue
        if part.get("Content-Disposition", "").lower().startswith("attachment"):
            continue
        payload = _decoded(part)
        text = payload.decode(part.get_content_charset() or "utf-8", "replace")
        cut = _COPY_MARKERS.search(text)
        return text[: cut.start()] if cut else text
    return ""


_LISTED = re.compile(r"^\s*<?([^\s<>@]+@[A-Za-z0-9.-]+)>?\s*(:|$)", re.M)


def _failed_address(body: str, msg: Message) -> str | None:
    """The failed recipient named in a bounce's text: an address on a line of its own (or
    before a colon, as Postfix and qmail write it) first, else the first stranger's one."""
    mine = {_address(_header(msg, n)) for n in ("From", "To", "Delivered-To", "X-Original-To")}
    for found in [*_LISTED.finditer(body), *_ADDRESS.finditer(body)]:
        address = found.group(1)
        local = address.split("@")[0].lower()
        if address.lower() not in mine and local not in ("mailer-daemon", "postmaster"):
            return address
    return None


def _other_kind(msg: Message) -> str:
    auto = _header(msg, "Auto-Submitted").lower()
    if (
        auto.startswith("auto-replied")
        or msg.get("X-Autoreply")
        or msg.get("X-Autorespond")
        or _header(msg, "Precedence").lower() == "auto_reply"
        or _AUTO_SUBJECT.search(_header(msg, "Subject"))
    ):
        return "auto-reply"
    return "other"


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
    for part in _parts(msg):
        if part.get_content_type() == "message/rfc822" and part.is_multipart():
            inner = part.get_payload(0)
            return str(inner.get(name, "")) if isinstance(inner, Message) else ""
        if part.get_content_type() == "text/rfc822-headers":
            fields = _field_block(_decoded(part))
            return fields.get(name.lower(), "")
    return ""


def _address(value: str | None) -> str | None:
    if not value:
        return None
    value = value.split(";", 1)[1] if ";" in value.split("@")[0] else value
    found = _ADDRESS.search(value)
    return found.group(1) if found else None
