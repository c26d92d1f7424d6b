"""The only place the stages are wired together: ingest -> store -> select -> compose -> send.

The CLI and the web app call these functions and hold no logic of their own. Preview and
dry-run go through the same selection and composition as a real send. One module per job:

- ``context``: settings, newsletter definition and store (``Context``), `digest init`;
- ``feeds``: fetching, feed health, checking one feed, importing article files;
- ``editions``: today's edition of a list and each reader's message of it (``Composer``);
- ``checks``: a sample message, `digest check`, preview files;
- ``sending``: `digest send` and `digest status`; ``delivery``: the transports and one
  worker's part of an edition; ``workers``: several worker processes;
- ``editorial``: editions listed and shown, drafts curated and rebuilt;
- ``proofs``: test copies (`digest send --to`); ``sections``: sections listed and renamed;
- ``people``: one function per subscriber action, shared by the CLI and the web edge, each
  asking the consent policy; ``edge``: sign-up, the shared view page and returned mail;
- ``archive``: the public archive's pages, feeds and static export.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from digest.pipeline.editorial import (
        rebuild as rebuild_edition,
    )
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
        set_timezone,
        show_subscriber,
        subscriber_record,
        unsubscribe,
    )
    from digest.pipeline.proofs import ProofReport, check_prefix, proof_addresses, send_proofs
    from digest.pipeline.sections import SectionRow, list_sections, rename_section
    from digest.pipeline.sending import send, send_status, series_to_send
    from digest.send import SendReport, SendStatus

# Where each name lives (module, and its name there). A name is imported on first use
# (PEP 562), so a command imports only the stages it runs: `digest --help` or
# `digest subscribers list` loads neither the composer (premailer, cssutils) nor the feed
# fetcher (httpx).
_WHERE = {
    "AddResult": ("digest.pipeline.people", "AddResult"),
    "ArchiveBuild": ("digest.pipeline.archive", "ArchiveBuild"),
    "ArchiveCopies": ("digest.pipeline.archive", "ArchiveCopies"),
    "ArchiveDocument": ("digest.pipeline.archive", "ArchiveDocument"),
    "BounceSummary": ("digest.pipeline.edge", "BounceSummary"),
    "CheckReport": ("digest.pipeline.checks", "CheckReport"),
    "Composer": ("digest.pipeline.editions", "Composer"),
    "ConfirmationSummary": ("digest.pipeline.edge", "ConfirmationSummary"),
    "Context": ("digest.pipeline.context", "Context"),
    "ImportResult": ("digest.pipeline.people", "ImportResult"),
    "MANY_RECIPIENTS": ("digest.pipeline.edge", "MANY_RECIPIENTS"),
    "Preview": ("digest.pipeline.checks", "Preview"),
    "ProofReport": ("digest.pipeline.proofs", "ProofReport"),
    "Reader": ("digest.pipeline.people", "Reader"),
    "SAMPLE_RECIPIENT": ("digest.pipeline.editions", "SAMPLE_RECIPIENT"),
    "Sample": ("digest.pipeline.checks", "Sample"),
    "SectionRow": ("digest.pipeline.sections", "SectionRow"),
    "SendReport": ("digest.send", "SendReport"),
    "SendStatus": ("digest.send", "SendStatus"),
    "add_subscriber": ("digest.pipeline.people", "add_subscriber"),
    "archive_edition": ("digest.pipeline.archive", "archive_edition"),
    "archive_feed": ("digest.pipeline.archive", "archive_feed"),
    "archive_index": ("digest.pipeline.archive", "archive_index"),
    "archive_root": ("digest.pipeline.archive", "archive_root"),
    "archived_lists": ("digest.pipeline.archive", "archived_lists"),
    "build_archive": ("digest.pipeline.archive", "build_archive"),
    "check": ("digest.pipeline.checks", "check"),
    "check_edition": ("digest.pipeline.checks", "check_edition"),
    "check_feed": ("digest.pipeline.feeds", "check_feed"),
    "check_prefix": ("digest.pipeline.proofs", "check_prefix"),
    "confirm_subscription": ("digest.pipeline.people", "confirm_subscription"),
    "confirmation_open": ("digest.pipeline.people", "confirmation_open"),
    "curate": ("digest.pipeline.editorial", "curate"),
    "curation_lines": ("digest.pipeline.editorial", "curation_lines"),
    "current_edition": ("digest.pipeline.editions", "current_edition"),
    "deliver": ("digest.pipeline.delivery", "deliver"),
    "editorial_mark": ("digest.pipeline.editorial", "editorial_mark"),
    "export_subscribers": ("digest.pipeline.people", "export_subscribers"),
    "failing_feeds": ("digest.pipeline.feeds", "failing_feeds"),
    "feed_health": ("digest.pipeline.feeds", "feed_health"),
    "fetch": ("digest.pipeline.feeds", "fetch"),
    "import_articles": ("digest.pipeline.feeds", "import_articles"),
    "import_subscribers": ("digest.pipeline.people", "import_subscribers"),
    "init": ("digest.pipeline.context", "init"),
    "list_articles": ("digest.pipeline.feeds", "list_articles"),
    "list_counts": ("digest.pipeline.people", "list_counts"),
    "list_editions": ("digest.pipeline.editorial", "list_editions"),
    "list_sections": ("digest.pipeline.sections", "list_sections"),
    "list_subscribers": ("digest.pipeline.people", "list_subscribers"),
    "make_transport": ("digest.pipeline.delivery", "make_transport"),
    "make_transports": ("digest.pipeline.delivery", "make_transports"),
    "mark_returned": ("digest.pipeline.people", "mark_returned"),
    "preview": ("digest.pipeline.checks", "preview"),
    "preview_settings": ("digest.pipeline.context", "preview_settings"),
    "process_bounces": ("digest.pipeline.edge", "process_bounces"),
    "proof_addresses": ("digest.pipeline.proofs", "proof_addresses"),
    "reader": ("digest.pipeline.people", "reader"),
    "rebuild_edition": ("digest.pipeline.editorial", "rebuild"),
    "remove_subscriber": ("digest.pipeline.people", "remove_subscriber"),
    "rename_section": ("digest.pipeline.sections", "rename_section"),
    "request_subscription": ("digest.pipeline.edge", "request_subscription"),
    "resubscribe": ("digest.pipeline.people", "resubscribe"),
    "sample": ("digest.pipeline.checks", "sample"),
    "save_web_preferences": ("digest.pipeline.people", "save_web_preferences"),
    "send": ("digest.pipeline.sending", "send"),
    "send_confirmations": ("digest.pipeline.edge", "send_confirmations"),
    "send_proofs": ("digest.pipeline.proofs", "send_proofs"),
    "send_status": ("digest.pipeline.sending", "send_status"),
    "series_to_send": ("digest.pipeline.sending", "series_to_send"),
    "set_note": ("digest.pipeline.editorial", "set_note"),
    "set_preferences": ("digest.pipeline.people", "set_preferences"),
    "set_timezone": ("digest.pipeline.people", "set_timezone"),
    "shared_edition": ("digest.pipeline.edge", "shared_edition"),
    "show_edition": ("digest.pipeline.editorial", "show_edition"),
    "show_subscriber": ("digest.pipeline.people", "show_subscriber"),
    "subscriber_record": ("digest.pipeline.people", "subscriber_record"),
    "unsubscribe": ("digest.pipeline.people", "unsubscribe"),
    "utcnow": ("digest.pipeline.context", "utcnow"),
    "with_verp": ("digest.pipeline.editions", "with_verp"),
    "write_preview": ("digest.pipeline.checks", "write_preview"),
}

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
    "series_to_send",
    "set_note",
    "set_preferences",
    "set_timezone",
    "shared_edition",
    "show_edition",
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
    module, attr = _WHERE[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # the next lookup does not come here
    return value
