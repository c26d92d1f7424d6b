"""The confirmation mail of a web sign-up (double opt-in). Pure."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING

from digest.models import OutgoingMessage

if TYPE_CHECKING:
    from digest.config import ListConfig


def confirmation_message(
    *,
    lst: ListConfig,
    newsletter_name: str,
    recipient: str,
    confirm_url: str,
    subscriber_id: int,
    request_id: int,
    date: datetime,
    envelope_from: str | None = None,
) -> OutgoingMessage:
    """The confirmation mail of a web sign-up, as an ``OutgoingMessage``. Pure.

    Plain text only, no tracking; the recipient's name is left out of the headers, so nothing
    a stranger typed into the form reaches a header but a validated address.
    """
    domain = lst.sender_address.rpartition("@")[2]
    # A local part beyond ASCII is written as UTF-8 (RFC 6532), for a relay with SMTPUTF8.
    msg = EmailMessage(policy=SMTP if recipient.isascii() else SMTPUTF8)
    msg["From"] = lst.sender
    msg["To"] = recipient
    msg["Subject"] = f"Confirm your subscription to {lst.title}"
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = make_msgid(f"confirm.{request_id}", domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        f"Someone, probably you, asked to receive {lst.title} from {newsletter_name} at this\n"
        f"address. To confirm, open this link:\n\n{confirm_url}\n\n"
        "If you did not ask for it, ignore this message: you will get nothing more.\n\n"
        f"-- \n{lst.postal_address}\n"
    )
    return OutgoingMessage(
        edition_id=0,
        subscriber_id=subscriber_id,
        recipient=recipient,
        envelope_from=envelope_from or lst.sender_address,
        message_id=msg["Message-ID"],
        raw=msg.as_bytes(),
    )
