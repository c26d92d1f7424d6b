"""Message bytes: encode once per section set (``prepare``), then per recipient (``personalize``).

``prepare`` builds everything that is the same for every recipient of a rendered edition:
the constant headers and both bodies, quoted-printable encoded in pieces cut at the
placeholders. ``personalize`` signs the links' tokens, builds the three headers that differ (To,
Message-ID, List-Unsubscribe), encodes the handful of short values and joins bytes: tens of
microseconds, where building an ``email.message`` per recipient costs milliseconds. The
message says how it was joined (``MessagePieces``), so a DKIM signer can canonicalize the
constant pieces once per template.

Shape of every message: multipart/alternative, text/plain first and text/html last (clients
show the last part they can), both UTF-8 quoted-printable, CRLF line ends.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import MIMEPart
from email.utils import format_datetime, parseaddr

from digest.audience.tokens import MAX_SUBSCRIBER_ID, edition_token, make_token
from digest.compose import placeholders as ph
from digest.compose import qp
from digest.compose.headers import address_header, checked_address, fold, phrase_words, text_header
from digest.config import ListConfig, Newsletter
from digest.errors import ComposeError
from digest.models import Edition, MessagePieces, OutgoingMessage, RenderedEdition
from digest.periods import KEY_PATTERN

MAX_HEADER_LINE = 998
_PLACEHOLDER = re.compile("(" + "|".join(map(re.escape, ph.ALL)) + ")")
_BASE_URL = re.compile(r"https?://[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+")
_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")
_EDITION_KEY = KEY_PATTERN


@dataclass(frozen=True)
class Recipient:
    subscriber_id: int
    email: str
    name: str = ""


@dataclass(frozen=True)
class MessageTemplate:
    """A rendered edition encoded once; only ``personalize`` looks inside."""

    edition_id: int
    edition_key: str
    list_name: str
    envelope_from: str
    domain: str
    base_url: str
    head_from: bytes  # Date, From, Reply-To: before To
    head_subject: bytes  # Subject: between To and Message-ID
    head_rest: bytes  # MIME-Version and List-Id: before List-Unsubscribe
    # The last headers, then both parts: encoded bytes and (placeholder, is_html) gaps.
    body: tuple[bytes | tuple[str, bool], ...]
    dot_safe: bool = False  # no line of the constant bytes starts with "."


def prepare(
    rendered: RenderedEdition,
    edition: Edition,
    *,
    newsletter: Newsletter,
    lst: ListConfig,
    base_url: str,
    date: datetime,
    secret: bytes | None = None,
) -> MessageTemplate:
    """``rendered`` encoded once, ready for ``personalize``.

    With ``secret``, the values that are the same for every recipient (the edition's web
    link) are put in here, once, rather than per recipient: the constant bytes then run on
    to the first value that differs, which is also where a DKIM body hash has to start
    hashing each message on its own."""
    base_url, domain = _checked_base_url(base_url), _sender_domain(lst)
    if not _EDITION_KEY.fullmatch(edition.key):
        raise ComposeError(
            f"edition key {edition.key!r} is not a period such as 2026-11-26, 2026-W48 or 2026-11"
        )
    if date.tzinfo is None:
        raise ComposeError("the message date must carry a time zone")
    _check_unsubscribe_fits(base_url, domain, lst.name)
    boundary = _boundary(rendered)
    head_from = "Date: " + format_datetime(date) + "\r\n" + _mailbox_header("From", lst.sender)
    if lst.reply_to:
        head_from += _mailbox_header("Reply-To", lst.reply_to)
    head_rest = "MIME-Version: 1.0\r\n" + fold(
        "List-Id", [*phrase_words(lst.title), f"<{lst.name}.{domain}>"]
    )
    head_tail = (
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        f"Feedback-ID: {edition.key}:{lst.name}:digest:{domain}\r\n"
        # RFC 3834: "auto-generated" is for mail a program sends on its own rather
        # than in reply to a message, which a scheduled digest is. It keeps vacation
        # responders from answering every subscriber's copy.
        "Auto-Submitted: auto-generated\r\n"
        "X-Auto-Response-Suppress: OOF, AutoReply\r\n"
        + fold("Content-Type", ["multipart/alternative;", f'boundary="{boundary}"'])
        + "\r\n"
        f"--{boundary}\r\n" + _part_head("plain")
    )
    body = [
        head_tail.encode("ascii"),
        *_pieces(rendered.text, is_html=False),
        f"\r\n--{boundary}\r\n{_part_head('html')}".encode("ascii"),
        *_pieces(rendered.html, is_html=True),
        f"\r\n--{boundary}--\r\n".encode("ascii"),
    ]
    if secret is not None:
        view = _view_url(base_url, lst.name, edition.key, secret)
        body = [
            _encoded(view, p[1]) if type(p) is tuple and p[0] == ph.VIEW_URL else p for p in body
        ]
    template = MessageTemplate(
        edition_id=0 if edition.id is None else edition.id,
        edition_key=edition.key,
        list_name=lst.name,
        envelope_from=checked_address(lst.sender_address),
        domain=domain,
        base_url=base_url,
        head_from=head_from.encode("ascii"),
        head_subject=text_header("Subject", rendered.subject).encode("ascii"),
        head_rest=head_rest.encode("ascii"),
        body=_merge(body),
    )
    return replace(
        template,
        dot_safe=_dot_safe(
            template.head_from, template.head_subject, template.head_rest, *template.body
        ),
    )


def personalize(
    template: MessageTemplate, recipient: Recipient, *, secret: bytes
) -> OutgoingMessage:
    """One recipient's message: their tokens, headers and values put into the encoded bodies."""
    t, sid = template, recipient.subscriber_id
    email = checked_address(recipient.email)
    unsubscribe = make_token(secret, sid, t.list_name, "unsubscribe")
    preferences = make_token(secret, sid, t.list_name, "preferences")
    values = {
        ph.UNSUBSCRIBE_URL: f"{t.base_url}/u/{unsubscribe}",
        ph.PREFERENCES_URL: f"{t.base_url}/p/{preferences}",
        ph.RECIPIENT_EMAIL: email,
    }
    message_id = _message_id(t, sid, secret)
    head = b"".join(
        (
            t.head_from,
            address_header("To", recipient.name, email).encode("utf-8"),
            t.head_subject,
            fold("Message-ID", [message_id]).encode("ascii"),
            t.head_rest,
            (
                f"List-Unsubscribe: <{t.base_url}/u/{unsubscribe}>, "
                f"<mailto:unsubscribe@{t.domain}?subject=unsubscribe%20{unsubscribe}>\r\n"
            ).encode("ascii"),
        )
    )
    encoded: dict[tuple[str, bool], bytes] = {}
    chunks = [head]
    personal: list[bytes] = []
    for piece in t.body:
        if isinstance(piece, bytes):
            chunks.append(piece)
            continue
        if piece not in encoded:
            name, is_html = piece
            if name == ph.VIEW_URL:  # a template prepared without the secret
                values[name] = _view_url(t.base_url, t.list_name, t.edition_key, secret)
            encoded[piece] = _encoded(values[name], is_html)
        chunks.append(encoded[piece])
        personal.append(encoded[piece])
    return OutgoingMessage(
        edition_id=t.edition_id,
        subscriber_id=sid,
        recipient=email,
        envelope_from=t.envelope_from,
        message_id=message_id,
        raw=b"".join(chunks),
        dot_safe=t.dot_safe and _dot_safe(head, *encoded.values()),
        pieces=MessagePieces(len(head), t.body, tuple(personal)),
    )


def _view_url(base_url: str, list_name: str, edition_key: str, secret: bytes) -> str:
    """The edition's web link: the same for every recipient (``ph.VIEW_URL``)."""
    return f"{base_url}/e/{edition_key}/{edition_token(secret, list_name, edition_key)}"


def _encoded(value: str, is_html: bool) -> bytes:
    """A placeholder's value as the piece that replaces it."""
    return qp.encode(html.escape(value) if is_html else value, soft_end=True)


def _dot_safe(*pieces: bytes | tuple) -> bool:
    # A line starting with "." is either inside one piece or at the start of one, so
    # checking every piece on its own checks the message they join into.
    return not any(type(p) is bytes and (p.startswith(b".") or b"\n." in p) for p in pieces)


def _pieces(body: str, *, is_html: bool) -> list[bytes | tuple[str, bool]]:
    """The body encoded in pieces, with its placeholders as ``(placeholder, is_html)``."""
    parts = _PLACEHOLDER.split(body.replace("\r\n", "\n").replace("\r", "\n"))
    pieces: list[bytes | tuple[str, bool]] = []
    for index, part in enumerate(parts):
        if index % 2:
            pieces.append((part, is_html))
        elif part:
            pieces.append(qp.encode(part, soft_end=index < len(parts) - 1))
    return pieces


def _merge(pieces: list[bytes | tuple[str, bool]]) -> tuple[bytes | tuple[str, bool], ...]:
    merged: list[bytes | tuple[str, bool]] = []
    for piece in pieces:
        if merged and isinstance(piece, bytes) and isinstance(merged[-1], bytes):
            merged[-1] += piece
        else:
            merged.append(piece)
    return tuple(merged)


def _part_head(subtype: str) -> str:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )


def _boundary(rendered: RenderedEdition) -> str:
    # "=_" never occurs in quoted-printable text, so the boundary cannot clash with a body;
    # derived from the content so the same edition always gives the same bytes.
    digest = hashlib.sha256((rendered.text + "\x00" + rendered.html).encode("utf-8"))
    return "=_digest_" + digest.hexdigest()[:32]


def _message_id(t: MessageTemplate, subscriber_id: int, secret: bytes) -> str:
    # Stable for a (edition, subscriber) pair, so a resent copy can be recognized as the same;
    # the MAC keeps ids apart between installations that reuse keys and subscriber numbers.
    label = f"message-id\x00{t.edition_id}\x00{t.edition_key}\x00{t.list_name}\x00{subscriber_id}"
    mac = hmac.new(secret, label.encode(), hashlib.sha256).hexdigest()[:12]
    return f"<{t.edition_key}.{t.list_name}.{subscriber_id}.{mac}@{t.domain}>"


def _mailbox_header(name: str, value: str) -> str:
    display, address = parseaddr(value)
    return address_header(name, display, address)


def _sender_domain(lst: ListConfig) -> str:
    domain = lst.sender_address.rpartition("@")[2].lower()
    if not _DOMAIN.fullmatch(domain):
        raise ComposeError(f"lists.{lst.name}.sender: {domain!r} is not a mail domain")
    return domain


def _checked_base_url(base_url: str) -> str:
    base_url = base_url.strip().rstrip("/")
    if not _BASE_URL.fullmatch(base_url):
        raise ComposeError(
            f"base URL {base_url[:80]!r} cannot go into a link or a header",
            "set DIGEST_BASE_URL to an absolute URL such as https://news.example.com",
        )
    return base_url


def _check_unsubscribe_fits(base_url: str, domain: str, list_name: str) -> None:
    longest = make_token(b"x", MAX_SUBSCRIBER_ID, list_name, "unsubscribe")
    line = (
        f"List-Unsubscribe: <{base_url}/u/{longest}>, "
        f"<mailto:unsubscribe@{domain}?subject=unsubscribe%20{longest}>"
    )
    if len(line) > MAX_HEADER_LINE:
        raise ComposeError(
            "the base URL is too long for a List-Unsubscribe header line", "shorten DIGEST_BASE_URL"
        )


def body_text(message: MIMEPart, subtype: str) -> str:
    """The text of a composed message's text/``subtype`` part (it has a plain and an HTML one)."""
    part = message.get_body((subtype,))
    if part is None:
        raise ComposeError(f"the message has no text/{subtype} part")
    return str(part.get_content())
