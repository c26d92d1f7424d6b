"""The only place the stages are wired together: ingest -> store -> select -> compose -> send.

The CLI and the web app call these functions and hold no logic of their own. Preview and
dry-run go through the same selection and composition as a real send. One module per job:

- ``context``: settings, newsletter definition and store (``Context``), `digest init`;
- ``feeds``: fetching, feed health, checking one feed, importing article files;
- ``editions``: today's edition of a list and each reader's message of it (``Composer``);
- ``checks``: a sample message, `digest check`, preview files;
- ``sending``: `digest send` and `digest status`; ``workers``: several worker processes;
- ``people``: one function per subscriber action, shared by the CLI and the web edge, each
  asking the consent policy; ``edge``: sign-up, view in browser and returned mail.
"""

from digest.pipeline.checks import (CheckReport, Preview, Sample, check, passes_check, preview,
                                    sample, write_preview)
from digest.pipeline.context import Context, init, utcnow
from digest.pipeline.edge import (BounceSummary, process_bounces, request_subscription,
                                  view_in_browser)
from digest.pipeline.editions import SAMPLE_RECIPIENT, Composer, current_edition, with_verp
from digest.pipeline.exits import (EXIT_CHECK, EXIT_FAILED, EXIT_INCOMPLETE, EXIT_LOCKED, EXIT_OK,
                                   EXIT_STOPPED)
from digest.pipeline.feeds import check_feed, failing_feeds, feed_health, fetch, import_articles
from digest.pipeline.people import (AddResult, ImportResult, Reader, add_subscriber,
                                    confirm_subscription, confirmation_open, export_subscribers,
                                    import_subscribers, list_counts, list_subscribers,
                                    mark_returned, reader, remove_subscriber, resubscribe,
                                    save_web_preferences, set_preferences, show_subscriber,
                                    subscriber_record, unsubscribe)
from digest.pipeline.sending import (SendSummary, deliver, make_transport, make_transports, send,
                                     send_status)

__all__ = [
    "AddResult", "BounceSummary", "CheckReport", "Composer", "Context", "EXIT_CHECK",
    "EXIT_FAILED", "EXIT_INCOMPLETE", "EXIT_LOCKED", "EXIT_OK", "EXIT_STOPPED", "ImportResult",
    "Preview", "Reader", "SAMPLE_RECIPIENT", "Sample", "SendSummary", "add_subscriber", "check",
    "check_feed", "confirm_subscription", "confirmation_open", "current_edition", "deliver",
    "export_subscribers", "failing_feeds", "feed_health", "fetch", "import_articles",
    "import_subscribers", "init", "list_counts", "list_subscribers", "mark_returned",
    "passes_check", "preview", "process_bounces", "reader", "remove_subscriber",
    "request_subscription", "resubscribe", "sample", "save_web_preferences", "send",
    "send_status", "set_preferences", "show_subscriber", "subscriber_record", "unsubscribe",
    "utcnow", "view_in_browser", "with_verp", "write_preview", "make_transport",
    "make_transports",
]
