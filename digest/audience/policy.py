"""The consent policy: the one table of how a person's standing on a list may change.

A person stands on each list in one of five ways (``Standing``): not on it (``new``),
``pending`` (signed up, not confirmed), ``active``, ``unsubscribed``, or ``suppressed``
(bounced, complained or erased: their address is on the suppression list). Only ``active``
is mailed, and only while the subscription is not paused.

``TABLE`` says, for each standing and each action, the standing after it, or that the action
is refused there. The only ways to become active are an operator adding (or importing) a new
address, an explicit resubscribe (``--force`` to lift a suppression), a double opt-in
confirmed by POST, and an operator adding or importing as active an address that is only
pending. Preferences, pause and resume, a repeated add or import, and an export imported back
never make anyone active. Every change of a subscriber's standing in digest (the CLI, the web
edge, imports, returned mail) asks ``after`` first; ``docs/subscribers.md`` shows the same
table.

Pure: the store reads the standing, this module decides, the store writes.
"""

from __future__ import annotations

import enum

from digest.errors import SubscriberError
from digest.models import SubscriberRecord, SubscriberStatus


class Standing(str, enum.Enum):
    new = "new"  # no such subscriber, or not on this list
    pending = "pending"
    active = "active"
    unsubscribed = "unsubscribed"
    suppressed = "suppressed"


class Action(str, enum.Enum):
    add = "add"  # an operator's `add`, or an import row, asking for an active subscription
    resubscribe = "resubscribe"  # the operator's, or the reader's on the preferences page
    resubscribe_force = "resubscribe --force"  # the operator's, lifting a suppression
    confirm = "confirm"  # a double opt-in confirmed by POST
    unsubscribe = "unsubscribe"  # CLI, one click, preferences page, mailed unsubscribe
    preferences = "preferences"  # sections, pause, resume (CLI or preferences page)
    bounce = "bounce"  # a hard bounce, or soft bounces past the limit
    complaint = "complaint"  # a spam complaint (ARF)
    sign_up = "sign-up"  # the web form: a confirmation is mailed, nothing else changes


S, A = Standing, Action
REFUSED = None
TABLE: dict[Standing, dict[Action, Standing | None]] = {
    S.new: {
        A.add: S.active,
        A.resubscribe: REFUSED,
        A.resubscribe_force: REFUSED,
        A.confirm: S.active,
        A.unsubscribe: REFUSED,
        A.preferences: REFUSED,
        A.bounce: S.suppressed,
        A.complaint: S.suppressed,
        A.sign_up: S.pending,
    },
    S.pending: {
        A.add: S.active,
        A.resubscribe: S.active,
        A.resubscribe_force: S.active,
        A.confirm: S.active,
        A.unsubscribe: S.unsubscribed,
        A.preferences: S.pending,
        A.bounce: S.suppressed,
        A.complaint: S.suppressed,
        A.sign_up: S.pending,
    },
    S.active: {
        A.add: S.active,
        A.resubscribe: S.active,
        A.resubscribe_force: S.active,
        A.confirm: S.active,
        A.unsubscribe: S.unsubscribed,
        A.preferences: S.active,
        A.bounce: S.suppressed,
        A.complaint: S.suppressed,
        A.sign_up: S.active,
    },
    S.unsubscribed: {
        A.add: S.unsubscribed,
        A.resubscribe: S.active,
        A.resubscribe_force: S.active,
        A.confirm: S.active,
        A.unsubscribe: S.unsubscribed,
        A.preferences: S.unsubscribed,
        A.bounce: S.suppressed,
        A.complaint: S.suppressed,
        A.sign_up: S.unsubscribed,
    },
    S.suppressed: {
        A.add: S.suppressed,
        A.resubscribe: REFUSED,
        A.resubscribe_force: S.active,
        A.confirm: REFUSED,
        A.unsubscribe: S.suppressed,
        A.preferences: S.suppressed,
        A.bounce: S.suppressed,
        A.complaint: S.suppressed,
        A.sign_up: S.suppressed,
    },
}

_REASONS = {
    (S.new, A.resubscribe): "is not on the list {list}",
    (S.new, A.resubscribe_force): "is not on the list {list}",
    (S.new, A.unsubscribe): "is not on the list {list}",
    (S.new, A.preferences): "is not on the list {list}",
    (S.suppressed, A.resubscribe): "is on the suppression list ({reason})",
    (S.suppressed, A.confirm): "is on the suppression list ({reason})",
}
_HINTS = {
    A.resubscribe: "pass --force to lift it, with the person's consent",
    A.preferences: "pass --join to subscribe them to it",
}


def standing(
    record: SubscriberRecord | None, list_name: str, suppressed: str | None = None
) -> Standing:
    """Where a subscriber (None: no such address) stands on one list."""
    if suppressed or (
        record is not None
        and record.status in (SubscriberStatus.bounced, SubscriberStatus.complained)
    ):
        return S.suppressed
    membership = record.membership(list_name) if record is not None else None
    if record is None or (membership is None and record.status is SubscriberStatus.active):
        return S.new
    if record.status is SubscriberStatus.pending:
        return S.pending
    if record.status is SubscriberStatus.unsubscribed or membership is None:
        return S.unsubscribed
    return Standing(membership.state)


def after(before: Standing, action: Action) -> Standing | None:
    """The standing after ``action``, or None when the policy refuses it there."""
    return TABLE[before][action]


def check(
    before: Standing, action: Action, *, email: str, list_name: str, reason: str | None = None
) -> Standing:
    """``after``, or a SubscriberError saying why the action is refused."""
    result = after(before, action)
    if result is None:
        why = _REASONS.get((before, action), "cannot be changed that way").format(
            list=repr(list_name), reason=reason or before.value
        )
        hint = _HINTS.get(action) if before is S.suppressed or action is A.preferences else None
        raise SubscriberError(f"{email} {why}", hint)
    return result


def mailed(record: SubscriberRecord, list_name: str, suppressed: str | None) -> bool:
    """Whether the next edition of the list goes to this subscriber (the rule of the store's
    recipient query, stated on the values)."""
    membership = record.membership(list_name)
    return (
        standing(record, list_name, suppressed) is S.active
        and membership is not None
        and not membership.paused
    )
