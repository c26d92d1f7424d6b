"""Subscribers: one function per action, shared by the CLI and the web edge.

Add, import, export, list, show, unsubscribe, resubscribe, preferences (sections, pause,
resume; the web page's form), remove and erase, and the double opt-in's confirmation. Every
change of a subscriber's standing asks the consent policy (``digest.audience.policy``) first;
the store then writes it. The edges parse, call one of these, and print or render.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from digest.audience import files, policy
from digest.audience.addresses import SMTPUTF8_NOTE, needs_smtputf8, normalize_email
from digest.audience.tokens import read_token
from digest.errors import SubscriberError
from digest.models import Membership, Subscriber, SubscriberRecord, SubscriberStatus
from digest.pipeline.context import Context

A = policy.Action


def _known(ctx: Context) -> tuple[list[str], list[str], tuple[str, ...]]:
    lists = [lst.name for lst in ctx.newsletter.lists]
    default = (lists[0],) if len(lists) == 1 else ()
    return lists, [s.slug for s in ctx.newsletter.sections], default


def _offered(ctx: Context) -> dict[str, tuple[str, ...]]:
    """Each list's frequencies, its own schedule's first."""
    return {lst.name: tuple(lst.offered) for lst in ctx.newsletter.lists}


def _record(ctx: Context, email: str) -> SubscriberRecord:
    email = normalize_email(email)
    record = ctx.store.record(email)
    if record is None:
        raise SubscriberError(f"no subscriber {email}")
    return record


def _check(
    ctx: Context, record: SubscriberRecord | None, list_name: str, action: A, email: str
) -> policy.Standing:
    reason = ctx.store.suppression(email)
    return policy.check(
        policy.standing(record, list_name, reason),
        action,
        email=email,
        list_name=list_name,
        reason=reason,
    )


# -- adding -----------------------------------------------------------------------------------


@dataclass
class AddResult:
    subscriber: Subscriber
    activated: bool = False  # it was a pending sign-up, now active
    notes: list[str] = field(default_factory=list)


def add_subscriber(ctx: Context, row: dict, now: datetime, *, force: bool = False) -> AddResult:
    """An operator's add: a new address becomes active; a pending one is activated."""
    lists, sections, default = _known(ctx)
    item = files.new_subscriber(
        row, lists=lists, sections=sections, default_lists=default, source="cli"
    )
    if not item.lists:
        raise SubscriberError("this newsletter has several lists: name them with --list")
    counts = ctx.store.add_subscribers([item], now, allow_suppressed=force)
    result = AddResult(ctx.store.existing_subscriber(item.email), activated=counts["updated"] > 0)
    if needs_smtputf8(item.email):
        result.notes.append(f"{item.email}: {SMTPUTF8_NOTE}")
    reason = ctx.store.suppression(item.email)
    if reason:
        result.notes.append(
            f"{item.email} stays suppressed ({reason}): it is not mailed "
            "until `digest subscribers resubscribe --force` lifts that"
        )
    return result


@dataclass
class ImportResult:
    path: str
    rows: int
    added: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: list[files.Reject] = field(default_factory=list)
    changes: list[dict] = field(default_factory=list)  # {"email", "line", "changes": [...]}
    notes: list[files.Reject] = field(default_factory=list)  # accepted, with a warning
    dry_run: bool = False


def import_subscribers(
    ctx: Context,
    path: Path,
    now: datetime,
    *,
    dry_run: bool = False,
    update: bool = False,
    force: bool = False,
) -> ImportResult:
    """Import a CSV or JSON-lines file: good rows in one transaction, bad rows reported.

    New addresses are added as the file says; stored subscribers are left as they are
    (``update``: their names, sections and new lists follow the file), except that a row
    asking for an active subscription activates one that is only pending. Nobody who left
    is made active again, whatever the file says.
    """
    lists, sections, default = _known(ctx)
    good, rejects = files.read_file(
        path, lists=lists, sections=sections, default_lists=default, offered=_offered(ctx)
    )
    result = ImportResult(
        path=str(path), rows=len(good) + len(rejects), rejected=rejects, dry_run=dry_run
    )
    result.notes = [
        files.Reject(g.line, f"{g.email}: {SMTPUTF8_NOTE}") for g in good if needs_smtputf8(g.email)
    ]
    if not good:
        return result
    if not force:  # a suppressed address is a bad row of its own, not the end of the import
        from digest.audience.addresses import email_key

        suppressed = ctx.store.suppressed_among([g.email for g in good])
        result.rejected += [
            files.Reject(
                g.line,
                f"{g.email} is on the suppression list "
                f"({suppressed[email_key(g.email)]}); --force imports "
                "it",
            )
            for g in good
            if email_key(g.email) in suppressed
        ]
        result.rejected.sort(key=lambda r: r.line)
        good = [g for g in good if email_key(g.email) not in suppressed]
    counts = ctx.store.add_subscribers(
        good, now, existing="update" if update else "skip", allow_suppressed=force, dry_run=dry_run
    )
    result.added, result.updated, result.skipped = (
        counts["added"],
        counts["updated"],
        counts["skipped"],
    )
    result.changes = [
        {"email": email, "line": line, "changes": what} for email, line, what in counts["changes"]
    ]
    return result


# -- reading ----------------------------------------------------------------------------------


def list_subscribers(
    ctx: Context, list_name: str | None = None, status: SubscriberStatus | None = None
) -> list[SubscriberRecord]:
    if list_name is not None:
        ctx.newsletter.get_list(list_name)
    return ctx.store.records(list_name, status)


def export_subscribers(
    ctx: Context,
    out: IO[str],
    *,
    json_lines: bool = False,
    list_name: str | None = None,
    status: SubscriberStatus | None = None,
) -> int:
    """Write subscribers in the import format (every state, list and consent field)."""
    records = list_subscribers(ctx, list_name, status)
    return (files.write_jsonl if json_lines else files.write_csv)(records, out)


def show_subscriber(ctx: Context, email: str) -> dict:
    """Everything stored about one subscriber (``files.detail``)."""
    record = _record(ctx, email)
    return files.detail(record, ctx.store.suppression(record.email))


def subscriber_record(ctx: Context, email: str) -> SubscriberRecord:
    return _record(ctx, email)


def list_counts(ctx: Context) -> dict[str, dict[str, int]]:
    """Per list, how many subscriptions are in each state."""
    return ctx.store.list_counts()


# -- changing ---------------------------------------------------------------------------------


def unsubscribe(ctx: Context, email: str, list_name: str | None, now: datetime) -> Subscriber:
    """Unsubscribe from one list, or (without a list) from everything."""
    record = _record(ctx, email)
    for name in [list_name] if list_name else record.lists:
        _check(ctx, record, name, A.unsubscribe, record.email)
    if list_name is None:
        ctx.store.unsubscribe_all(record.id, now)
    else:
        ctx.store.set_membership(record.id, list_name, now, state="unsubscribed")
    return ctx.store.existing_subscriber(record.email)


def resubscribe(
    ctx: Context, email: str, list_name: str | None, now: datetime, *, force: bool = False
) -> Subscriber:
    """An explicit resubscribe (on one list, or every list); ``force`` lifts a suppression."""
    record = _record(ctx, email)
    action = A.resubscribe_force if force else A.resubscribe
    for name in [list_name] if list_name else (record.lists or [None]):
        if name is None:
            raise SubscriberError(
                f"{record.email} is on no list",
                "add the list with `digest subscribers prefs --join`",
            )
        _check(ctx, record, name, action, record.email)
    return ctx.store.resubscribe(record.email, now, list_name, lift_suppression=force)


def set_preferences(
    ctx: Context,
    email: str,
    list_name: str | None,
    now: datetime,
    *,
    sections: str | None = None,
    paused: bool | None = None,
    join: bool = False,
    frequency: str | None = None,
) -> SubscriberRecord:
    """Change one subscription's sections ("" or "all": every section), its frequency (one
    the list offers; "default": the list's own schedule) or pause it; with ``join``, an
    active subscriber joins the list first. Never makes anyone active."""
    lst = ctx.newsletter.get_list(list_name)
    record = _record(ctx, email)
    how_often: str | None = "keep"
    if frequency is not None:
        try:
            how_often = lst.check_frequency(frequency)
        except ValueError as exc:
            raise SubscriberError(str(exc)) from None
    chosen: frozenset[str] | str | None = "keep"
    if sections is not None:
        known = [s.slug for s in ctx.newsletter.sections_of(lst)]
        names = (
            ()
            if sections.strip().lower() == "all"
            else files.parse_names(sections, known, "section")
        )
        chosen = frozenset(names) if names else None
    reason = ctx.store.suppression(record.email)
    before = policy.standing(record, lst.name, reason)
    if before is policy.Standing.new and join:
        policy.check(before, A.add, email=record.email, list_name=lst.name)
        ctx.store.set_membership(record.id, lst.name, now, state="active", create=True)
    elif record.membership(lst.name) is None and join:
        raise SubscriberError(
            f"{record.email} is {before.value}: only an active subscriber joins a list this way",
            "use `digest subscribers resubscribe` with their consent",
        )
    else:
        policy.check(before, A.preferences, email=record.email, list_name=lst.name, reason=reason)
        if record.membership(lst.name) is None:
            raise SubscriberError(f"{record.email} is not on the list {lst.name!r}")
    ctx.store.set_membership(
        record.id, lst.name, now, sections=chosen, paused=paused, frequency=how_often
    )
    return _record(ctx, record.email)


def set_timezone(ctx: Context, email: str, zone: str, now: datetime) -> SubscriberRecord:
    """Set the time zone a person reads in ("": none, each list's own). Only lists that
    deliver locally use it; a change made while an edition is in flight applies from the
    next edition (docs/decisions.md)."""
    record = _record(ctx, email)
    ctx.store.set_timezone(record.id, files.parse_zone(zone), now)
    return _record(ctx, record.email)


def save_web_preferences(
    ctx: Context,
    email: str,
    list_name: str,
    now: datetime,
    *,
    chosen: Iterable[str],
    pause: bool,
    frequency: str | None = None,
    timezone: str | None = None,
) -> None:
    """The preferences page's form: the sections ticked (of the list's), the frequency
    chosen (None: the form offered no choice), the pause box and the reader's time zone
    (None: not asked; "": the list's own). Nothing is saved unless all of it is valid."""
    known = [s.slug for s in ctx.newsletter.sections_of(ctx.newsletter.get_list(list_name))]
    picked = [slug for slug in chosen if slug in known]
    if not picked:
        raise SubscriberError("Choose at least one section, or unsubscribe.")
    zone = files.parse_zone(timezone) if timezone is not None else None
    set_preferences(
        ctx,
        email,
        list_name,
        now,
        sections="all" if set(picked) == set(known) else ";".join(picked),
        paused=pause,
        frequency=frequency,
    )
    if timezone is not None:
        set_timezone(ctx, email, zone or "", now)


def remove_subscriber(ctx: Context, email: str, now: datetime, *, erase: bool = False) -> str:
    """Delete a subscriber (``erase``: keep only a hashed suppression entry)."""
    email = normalize_email(email)
    ctx.store.remove_subscriber(email, now, erase=erase)
    return email


def mark_returned(
    ctx: Context,
    subscriber_id: int,
    action: policy.Action,
    now: datetime,
    *,
    reason: str | None = None,
) -> None:
    """A hard bounce (or soft bounces past the limit) or a complaint: suppressed."""
    record = ctx.store.record_by_id(subscriber_id)
    if record is None:
        return
    for name in record.lists:
        _check(ctx, record, name, action, record.email)
    status, default = {
        A.bounce: (SubscriberStatus.bounced, "hard-bounce"),
        A.complaint: (SubscriberStatus.complained, "complaint"),
    }[action]
    ctx.store.mark(subscriber_id, status, reason or default, now)


# -- the web edge's readers -------------------------------------------------------------------


@dataclass(frozen=True)
class Reader:
    """Whom a link's token names: the subscriber, their subscription, the list."""

    record: SubscriberRecord
    membership: Membership
    list_name: str
    suppressed: str | None = None

    @property
    def blocked(self) -> bool:
        """Whether the policy refuses the reader's own resubscribe (a suppression)."""
        return (
            policy.after(
                policy.standing(self.record, self.list_name, self.suppressed), A.resubscribe
            )
            is None
        )


def reader(ctx: Context, token: str, purpose: str) -> Reader | None:
    """The reader a token names, or None (forged, stale, gone, or not on that list)."""
    found = read_token(ctx.settings.require_secret(), token, purpose)
    if found is None or found[1] not in {lst.name for lst in ctx.newsletter.lists}:
        return None
    record = ctx.store.record_by_id(found[0])
    membership = record.membership(found[1]) if record else None
    if record is None or membership is None:
        return None
    return Reader(record, membership, found[1], ctx.store.suppression(record.email))


def confirmation_open(ctx: Context, token: str, now: datetime) -> str | None:
    """The list a confirm link is for, while it still works; else None. Changes nothing."""
    found = read_token(ctx.settings.require_secret(), token, "confirm")
    if found is None or found[1] not in {lst.name for lst in ctx.newsletter.lists}:
        return None
    ok = ctx.store.confirmation_open(
        found[0], found[1], now, max_age_seconds=ctx.settings.confirm_hours * 3600
    )
    return found[1] if ok else None


def confirm_subscription(
    ctx: Context, token: str, now: datetime, ip: str | None
) -> tuple[int, str] | None:
    """A confirmed double opt-in (POST): ``(subscriber id, list)``, or None when the link is
    forged, used or stale, or the policy refuses it (a suppressed address)."""
    list_name = confirmation_open(ctx, token, now)
    found = read_token(ctx.settings.require_secret(), token, "confirm")
    if list_name is None or found is None:
        return None
    sid = ctx.store.confirm(
        found[0], list_name, now, ip, max_age_seconds=ctx.settings.confirm_hours * 3600
    )
    return None if sid is None else (sid, list_name)
