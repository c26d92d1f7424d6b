"""The only place the stages are wired together: ingest -> store -> select -> compose -> send.

The CLI and the web app call these functions and hold no logic of their own. Preview and
dry-run go through the same selection and composition as a real send. One module per job:

- ``context``: settings, newsletter definition and store (``Context``), `digest init`;
- ``feeds``: fetching, feed health, checking one feed, importing article files;
- ``editions``: today's edition of a list and each reader's message of it (``Composer``);
- ``checks``: a sample message, `digest check`, preview files;
- ``sending``: `digest send` and `digest status`; ``delivery``: the transports and one
  worker's part of an edition; ``workers``: several worker processes;
- ``sections``: `digest sections` (list, rename) and the warning about sections readers
  chose that digest.toml no longer defines; ``proofs``: test copies (`digest send --to`);
- ``people``: one function per subscriber action, shared by the CLI and the web edge, each
  asking the consent policy; ``edge``: sign-up, the shared view page and returned mail;
- ``archive``: the public archive's pages and feeds, served or written as files.
"""

from digest.pipeline.archive import (
    ArchiveBuild,
    ArchiveCopies,
    ArchiveDocument,
    archive_edition,
    archive_feed,
    archive_index,
    archive_root,
    archived_lists,
    build_archive,
)
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
    MANY_RECIPIENTS,
    BounceSummary,
    ConfirmationSummary,
    process_bounces,
    request_subscription,
    send_confirmations,
    shared_edition,
)
from digest.pipeline.editions import SAMPLE_RECIPIENT, Composer, current_edition, with_verp
from digest.pipeline.editorial import (
    curate,
    curation_lines,
    editorial_mark,
    list_editions,
    set_note,
    show_edition,
)
from digest.pipeline.editorial import rebuild as rebuild_edition
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
from digest.pipeline.proofs import ProofReport, check_prefix, proof_addresses, send_proofs
from digest.pipeline.sections import SectionRow, list_sections, rename_section
from digest.pipeline.sending import send, send_status
from digest.send import SendReport, SendStatus

__all__ = [
    "MANY_RECIPIENTS",
    "SAMPLE_RECIPIENT",
    "AddResult",
    "ArchiveBuild",
    "ArchiveCopies",
    "ArchiveDocument",
    "BounceSummary",
    "CheckReport",
    "Composer",
    "ConfirmationSummary",
    "Context",
    "ImportResult",
    "Preview",
    "ProofReport",
    "Reader",
    "Sample",
    "SectionRow",
    "SendReport",
    "SendStatus",
    "add_subscriber",
    "archive_edition",
    "archive_feed",
    "archive_index",
    "archive_root",
    "archived_lists",
    "build_archive",
    "check",
    "check_edition",
    "check_feed",
    "check_prefix",
    "confirm_subscription",
    "confirmation_open",
    "curate",
    "curation_lines",
    "current_edition",
    "deliver",
    "editorial_mark",
    "export_subscribers",
    "failing_feeds",
    "feed_health",
    "fetch",
    "import_articles",
    "import_subscribers",
    "init",
    "list_articles",
    "list_counts",
    "list_editions",
    "list_sections",
    "list_subscribers",
    "make_transport",
    "make_transports",
    "mark_returned",
    "preview",
    "preview_settings",
    "process_bounces",
    "proof_addresses",
    "reader",
    "rebuild_edition",
    "remove_subscriber",
    "rename_section",
    "request_subscription",
    "resubscribe",
    "sample",
    "save_web_preferences",
    "send",
    "send_confirmations",
    "send_proofs",
    "send_status",
    "set_note",
    "set_preferences",
    "shared_edition",
    "show_edition",
    "show_subscriber",
    "subscriber_record",
    "unsubscribe",
    "utcnow",
    "with_verp",
    "write_preview",
]
