"""The states of subscribers, editions and delivery ledger rows, and the words the command
line shows of them: plain enums, imported by the command line's help without the values of
``digest.models`` (whose classes take a tenth of ``digest --help`` to create).
"""

from __future__ import annotations

import enum

TEST_SUBJECT_PREFIX = "[TEST] "  # before the subject of a test copy (`digest send --to`)


class SubscriberStatus(str, enum.Enum):
    pending = "pending"
    active = "active"
    unsubscribed = "unsubscribed"
    bounced = "bounced"
    complained = "complained"


class DeliveryState(enum.StrEnum):
    """A delivery ledger row's state (``digest.store.ledger`` says when each is committed)."""

    queued = "queued"
    sending = "sending"  # claimed; committed before MAIL FROM
    in_data = "in_data"  # committed just before DATA: the relay may now have the message
    sent = "sent"
    deferred = "deferred"  # temporary failure, retried by a later run
    failed = "failed"  # permanent failure
    unknown = "unknown"  # the body was written but no final reply came: maybe delivered
    skipped = "skipped"  # unsubscribed or suppressed when its turn came


FINAL_STATES = frozenset({DeliveryState.sent, DeliveryState.failed, DeliveryState.skipped})
# Not delivered yet: the edition is not complete while a row is in one of these.
PENDING_STATES = (
    DeliveryState.queued,
    DeliveryState.sending,
    DeliveryState.in_data,
    DeliveryState.deferred,
)
# Where a problem shows: what `digest status` lists under the latest problems.
PROBLEM_STATES = (DeliveryState.deferred, DeliveryState.failed, DeliveryState.unknown)
# What a run counts of the rows it handled (the others are its steps on the way).
OUTCOME_STATES = (
    DeliveryState.sent,
    DeliveryState.deferred,
    DeliveryState.failed,
    DeliveryState.unknown,
    DeliveryState.skipped,
)


class EditionState(enum.StrEnum):
    """An edition's state: ``draft`` while it holds only the editor's curation (its articles
    are chosen again at every look); ``sending`` once frozen with its ledger whole (both in
    one transaction, when its first messages are queued); ``complete`` once no row is
    pending. ``open`` (frozen, ledger not yet filled) is met only in stores from before
    drafts, and in tests that build a ledger by hand."""

    draft = "draft"
    open = "open"
    sending = "sending"
    complete = "complete"
