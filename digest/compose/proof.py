"""A test copy of a composed message: its Subject prefixed and its own Message-ID.

A test copy is the message a reader would get, byte for byte, except for two headers: the
Subject carries a prefix (``[TEST] ``) and the Message-ID is new for every copy, so the copies
sent to several addresses, or sent again after a fix, are separate messages (a mail client
drops a second message with a Message-ID it has seen, and the Maildir outbox names its files
after it). The envelope sender is the list's own address: a returned test copy concerns no
subscriber. Pure, like the rest of ``digest.compose``.
"""

from __future__ import annotations

from dataclasses import replace
from email import policy
from email.parser import BytesHeaderParser

from digest.compose.headers import fold, one_line, text_header
from digest.compose.mime import MessageTemplate
from digest.errors import ComposeError
from digest.models import OutgoingMessage


def subject_of(template: MessageTemplate) -> str:
    """The Subject of the messages of ``template``, decoded."""
    parsed = BytesHeaderParser(policy=policy.default).parsebytes(template.head_subject + b"\r\n")
    return one_line(str(parsed["Subject"] or ""))


def as_test_copy(
    message: OutgoingMessage, template: MessageTemplate, *, prefix: str, message_id: str
) -> OutgoingMessage:
    """``message`` (personalized from ``template``) as a test copy: Subject ``prefix`` +
    the subject, Message-ID ``message_id``, envelope sender the list's address. Control
    characters in ``prefix`` become spaces: no CR or LF reaches the header."""
    subject = text_header("Subject", prefix + subject_of(template)).encode("ascii")
    raw = _replace_header(message.raw, template.head_subject, subject)
    raw = _replace_header(
        raw,
        fold("Message-ID", [message.message_id]).encode("ascii"),
        fold("Message-ID", [message_id]).encode("ascii"),
    )
    # Header lines start with a name or a folding space, never a dot: dot_safe is unchanged.
    # Both headers are in the recipient's own bytes, before the template's: the template's
    # part (what a DKIM signer hashes by pieces) moves by the change in their length.
    pieces = message.pieces
    if pieces is not None:
        pieces = replace(pieces, start=pieces.start + len(raw) - len(message.raw))
    return replace(
        message,
        raw=raw,
        message_id=message_id,
        envelope_from=template.envelope_from,
        pieces=pieces,
    )


def _replace_header(raw: bytes, old: bytes, new: bytes) -> bytes:
    """``raw`` with the header line(s) ``old`` (CRLF-ended) replaced by ``new``."""
    end = raw.find(b"\r\n\r\n")
    head = b"\r\n" + raw[: end + 2]  # every header line, each behind a CRLF
    if end < 0 or head.count(b"\r\n" + old) != 1:
        raise ComposeError("the composed message's headers are not as composed: no test copy")
    return head.replace(b"\r\n" + old, b"\r\n" + new, 1)[2:] + raw[end + 2 :]
