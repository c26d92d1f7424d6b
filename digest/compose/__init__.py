"""Composition: an edition -> the exact message bytes for each recipient. Pure.

Nothing here reads the clock, the environment, the network or the database: the edition,
the newsletter's settings, the templates, the date and the secret all come in as arguments.

    render()       sections -> RenderedEdition (subject, preheader, inlined HTML, text),
                   once per distinct section set; bodies hold the placeholders below
    prepare()      RenderedEdition -> MessageTemplate: headers and bodies encoded once
    personalize()  MessageTemplate + Recipient -> OutgoingMessage, in microseconds

Placeholders (``digest.compose.placeholders``), replaced per recipient, HTML-escaped in HTML:
``__digest_unsubscribe_url__``, ``__digest_preferences_url__``, ``__digest_view_url__``,
``__digest_recipient_email__``.

``digest.compose.check`` lints a composed message (``digest check``, and ``digest send``
before anything goes), with the colours and contrast ``digest.compose.styles`` reads.
"""

from digest.compose.inline import inline_css
from digest.compose.mime import MessageTemplate, Recipient, personalize, prepare
from digest.compose.placeholders import (
    PREFERENCES_URL,
    RECIPIENT_EMAIL,
    UNSUBSCRIBE_URL,
    VIEW_URL,
)
from digest.compose.render import HTML_BUDGET, TEMPLATES, make_environment, render

__all__ = [
    "HTML_BUDGET",
    "PREFERENCES_URL",
    "RECIPIENT_EMAIL",
    "TEMPLATES",
    "UNSUBSCRIBE_URL",
    "VIEW_URL",
    "MessageTemplate",
    "Recipient",
    "inline_css",
    "make_environment",
    "personalize",
    "prepare",
    "render",
]
