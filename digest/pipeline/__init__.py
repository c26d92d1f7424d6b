"""The only place the stages are wired together: ingest -> store -> select -> compose -> send.

The CLI and the web app call these functions and hold no logic of their own. Preview and
dry-run go through the same selection and composition as a real send. One module per job:

- ``context``: settings, newsletter definition and store (``Context``), `digest init`;
- ``feeds``: fetching, feed health, checking one feed, importing article files;
- ``editions``: today's edition of a list and each reader's message of it (``Composer``);
- ``checks``: a sample message, `digest check`, preview files;
- ``sending``: `digest send` and `digest status`; ``workers``: several worker processes;
- ``people``: subscribers; ``edge``: the web endpoints' actions and returned mail.
"""

from digest.pipeline.checks import (CheckReport, Preview, Sample, check, passes_check, preview,
                                    sample, write_preview)
from digest.pipeline.context import Context, init, utcnow
from digest.pipeline.edge import (BounceSummary, ConfirmationSummary, process_bounces,
                                  request_subscription, send_confirmations, shared_edition)
from digest.pipeline.editions import SAMPLE_RECIPIENT, Composer, current_edition, with_verp
from digest.pipeline.exits import (EXIT_CHECK, EXIT_FAILED, EXIT_INCOMPLETE, EXIT_LOCKED, EXIT_OK,
                                   EXIT_STOPPED)
from digest.pipeline.feeds import check_feed, failing_feeds, feed_health, fetch, import_articles
from digest.pipeline.people import (ImportResult, add_subscriber, import_subscribers, resubscribe,
                                    set_preferences, set_status, unsubscribe)
from digest.pipeline.sending import (SendSummary, deliver, make_transport, make_transports, send,
                                     send_status)

__all__ = [
    "BounceSummary", "CheckReport", "ConfirmationSummary", "Composer", "Context", "EXIT_CHECK", "EXIT_FAILED",
    "EXIT_INCOMPLETE", "EXIT_LOCKED", "EXIT_OK", "EXIT_STOPPED", "ImportResult", "Preview",
    "SAMPLE_RECIPIENT", "Sample", "SendSummary", "add_subscriber", "check", "check_feed",
    "current_edition", "deliver", "failing_feeds", "feed_health", "fetch", "import_articles",
    "import_subscribers", "init", "passes_check", "preview", "process_bounces",
    "request_subscription", "resubscribe", "sample", "send", "send_confirmations",
    "send_status", "set_preferences", "set_status", "shared_edition", "unsubscribe", "utcnow",
    "with_verp", "write_preview",
    "make_transport", "make_transports",
]
