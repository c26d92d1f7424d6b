"""The per-recipient placeholders left in rendered bodies.

``render`` writes these strings where a recipient's own values go; ``personalize`` replaces
them (HTML-escaped in the HTML part). They are plain ASCII letters and underscores so that
lxml, premailer and quoted-printable leave them byte for byte as they are, and ``render``
removes the shared prefix from every piece of content, so no article, title or address can
ever spell one.
"""

from __future__ import annotations

PREFIX = "__digest_"

UNSUBSCRIBE_URL = "__digest_unsubscribe_url__"  # {base_url}/u/{token}, purpose "unsubscribe"
PREFERENCES_URL = "__digest_preferences_url__"  # {base_url}/p/{token}, purpose "preferences"
VIEW_URL = "__digest_view_url__"  # {base_url}/e/{edition key}/{edition token}: no one's
RECIPIENT_EMAIL = "__digest_recipient_email__"  # the address this copy was sent to

ALL = (UNSUBSCRIBE_URL, PREFERENCES_URL, VIEW_URL, RECIPIENT_EMAIL)


def scrub(value: str) -> str:
    """``value`` with any would-be placeholder defused (content must never spell one)."""
    while PREFIX in value:
        value = value.replace(PREFIX, "_digest_")
    return value
