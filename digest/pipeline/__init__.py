"""The only place the stages are wired together: ingest -> store -> select -> compose -> send.

The CLI and the web app call these functions and hold no logic of their own. Preview and
dry-run go through the same selection and composition as a real send. One module per job:

- ``context``: settings, newsletter definition and store (``Context``), `digest init`;
- ``feeds``: fetching, feed health, checking one feed, importing article files;
- ``editions``: today's edition of a list and each reader's message of it (``Composer``);
- ``checks``: a sample message, `digest check`, preview files;
- ``sending``: `digest send` and `digest status`; ``delivery``: the transports and one
  worker's part of an edition; ``workers``: several worker processes;
- ``people``: one function per subscriber action, shared by the CLI and the web edge, each
  asking the consent policy; ``edge``: sign-up, the shared view page and returned mail.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digest.pipeline.checks import (
        CheckReport,
        Preview,
        Sample,
        check,
        check_edition,
        preview,
        sample,
        write_preview,
    )
    from digest.pipeline.context import Context, init, preview_settings, utcnow
    from digest.pipeline.delivery import deliver, make_transport, make_transports
    from digest.pipeline.edge import (
        BounceSummary,
        ConfirmationSummary,
        process_bounces,
        request_subscription,
        send_confirmations,
        shared_edition,
    )
    from digest.pipeline.editions import SAMPLE_RECIPIENT, Composer, current_edition, with_verp
    from digest.pipeline.feeds import (
        check_feed,
        failing_feeds,
        feed_health,
        fetch,
        import_articles,
        list_articles,
    )
    from digest.pipeline.people import (
        AddResult,
        ImportResult,
        Reader,
        add_subscriber,
        confirm_subscription,
        confirmation_open,
        export_subscribers,
        import_subscribers,
        list_counts,
        list_subscribers,
        mark_returned,
        reader,
        remove_subscriber,
        resubscribe,
        save_web_preferences,
        set_preferences,
        show_subscriber,
        subscriber_record,
        unsubscribe,
    )
    from digest.pipeline.sending import send, send_status
    from digest.send import SendReport, SendStatus

# Where each name lives. A name is imported on first use (PEP 562), so a command imports
# only the stages it runs: `digest --help` or `digest subscribers list` loads neither the
# composer (premailer, cssutils) nor the feed fetcher (httpx).
_WHERE = {
    "SAMPLE_RECIPIENT": "digest.pipeline.editions",
    "AddResult": "digest.pipeline.people",
    "BounceSummary": "digest.pipeline.edge",
    "CheckReport": "digest.pipeline.checks",
    "Composer": "digest.pipeline.editions",
    "ConfirmationSummary": "digest.pipeline.edge",
    "Context": "digest.pipeline.context",
    "ImportResult": "digest.pipeline.people",
    "Preview": "digest.pipeline.checks",
    "Reader": "digest.pipeline.people",
    "Sample": "digest.pipeline.checks",
    "SendReport": "digest.send",
    "SendStatus": "digest.send",
    "add_subscriber": "digest.pipeline.people",
    "check": "digest.pipeline.checks",
    "check_edition": "digest.pipeline.checks",
    "check_feed": "digest.pipeline.feeds",
    "confirm_subscription": "digest.pipeline.people",
    "confirmation_open": "digest.pipeline.people",
    "current_edition": "digest.pipeline.editions",
    "deliver": "digest.pipeline.delivery",
    "export_subscribers": "digest.pipeline.people",
    "failing_feeds": "digest.pipeline.feeds",
    "feed_health": "digest.pipeline.feeds",
    "fetch": "digest.pipeline.feeds",
    "import_articles": "digest.pipeline.feeds",
    "import_subscribers": "digest.pipeline.people",
    "init": "digest.pipeline.context",
    "list_articles": "digest.pipeline.feeds",
    "list_counts": "digest.pipeline.people",
    "list_subscribers": "digest.pipeline.people",
    "make_transport": "digest.pipeline.delivery",
    "make_transports": "digest.pipeline.delivery",
    "mark_returned": "digest.pipeline.people",
    "preview": "digest.pipeline.checks",
    "preview_settings": "digest.pipeline.context",
    "process_bounces": "digest.pipeline.edge",
    "reader": "digest.pipeline.people",
    "remove_subscriber": "digest.pipeline.people",
    "request_subscription": "digest.pipeline.edge",
    "resubscribe": "digest.pipeline.people",
    "sample": "digest.pipeline.checks",
    "save_web_preferences": "digest.pipeline.people",
    "send": "digest.pipeline.sending",
    "send_confirmations": "digest.pipeline.edge",
    "send_status": "digest.pipeline.sending",
    "set_preferences": "digest.pipeline.people",
    "shared_edition": "digest.pipeline.edge",
    "show_subscriber": "digest.pipeline.people",
    "subscriber_record": "digest.pipeline.people",
    "unsubscribe": "digest.pipeline.people",
    "utcnow": "digest.pipeline.context",
    "with_verp": "digest.pipeline.editions",
    "write_preview": "digest.pipeline.checks",
}

__all__ = [
    "SAMPLE_RECIPIENT",
    "AddResult",
    "BounceSummary",
    "CheckReport",
    "Composer",
    "ConfirmationSummary",
    "Context",
    "ImportResult",
    "Preview",
    "Reader",
    "Sample",
    "SendReport",
    "SendStatus",
    "add_subscriber",
    "check",
    "check_edition",
    "check_feed",
    "confirm_subscription",
    "confirmation_open",
    "current_edition",
    "deliver",
    "export_subscribers",
    "failing_feeds",
    "feed_health",
    "fetch",
    "import_articles",
    "import_subscribers",
    "init",
    "list_articles",
    "list_counts",
    "list_subscribers",
    "make_transport",
    "make_transports",
    "mark_returned",
    "preview",
    "preview_settings",
    "process_bounces",
    "reader",
    "remove_subscriber",
    "request_subscription",
    "resubscribe",
    "sample",
    "save_web_preferences",
    "send",
    "send_confirmations",
    "send_status",
    "set_preferences",
    "shared_edition",
    "show_subscriber",
    "subscriber_record",
    "unsubscribe",
    "utcnow",
    "with_verp",
    "write_preview",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
