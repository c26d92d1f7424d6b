"""The confirmation mail of a web sign-up (double opt-in), in the list's locale. Pure."""

from __future__ import annotations

import textwrap
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING

from digest import i18n
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
    _ = i18n.gettext_of(lst.locale)
    domain = lst.sender_address.rpartition("@")[2]
    # A local part beyond ASCII is written as UTF-8 (RFC 6532), for a relay with SMTPUTF8.
    msg = EmailMessage(policy=SMTP if recipient.isascii() else SMTPUTF8)
    msg["From"] = lst.sender
    msg["To"] = recipient
    msg["Subject"] = _("Confirm your subscription to %(list)s") % {"list": lst.title}
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = make_msgid(f"confirm.{request_id}", domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    asked = _(
        "Someone, probably you, asked to receive %(list)s from %(newsletter)s at this "
        "address. To confirm, open this link:"
    ) % {"list": lst.title, "newsletter": newsletter_name}
    ignore = _("If you did not ask for it, ignore this message: you will get nothing more.")
    msg.set_content(
        f"{_wrap(asked)}\n\n{confirm_url}\n\n{_wrap(ignore)}\n\n-- \n{lst.postal_address}\n"
    )
    return OutgoingMessage(
        edition_id=0,
        subscriber_id=subscriber_id,
        recipient=recipient,
        envelope_from=envelope_from or lst.sender_address,
        message_id=msg["Message-ID"],
        raw=msg.as_bytes(),
    )


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=72, break_long_words=False, break_on_hyphens=False)
