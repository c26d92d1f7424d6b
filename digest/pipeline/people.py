"""Subscribers: add, import, unsubscribe, resubscribe, preferences."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from digest import subscribers as subs
from digest.errors import SubscriberError
from digest.models import Subscriber, SubscriberStatus
from digest.pipeline.context import Context


def _known(ctx: Context) -> tuple[list[str], list[str], tuple[str, ...]]:
    lists = [lst.name for lst in ctx.newsletter.lists]
    default = (lists[0],) if len(lists) == 1 else ()
    return lists, [s.slug for s in ctx.newsletter.sections], default


def add_subscriber(ctx: Context, row: dict, now: datetime, *, force: bool = False) -> Subscriber:
    lists, sections, default = _known(ctx)
    item = subs.new_subscriber(
        row, lists=lists, sections=sections, default_lists=default, source="cli"
    )
    if not item.lists:
        raise SubscriberError("this newsletter has several lists: name them with --list")
    ctx.store.add_subscribers([item], now, allow_suppressed=force)
    return ctx.store.existing_subscriber(item.email)


@dataclass
class ImportResult:
    path: str
    rows: int
    added: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: list[subs.Reject] = field(default_factory=list)
    dry_run: bool = False


def import_subscribers(
    ctx: Context,
    path: Path,
    now: datetime,
    *,
    dry_run: bool = False,
    existing: str = "update",
    force: bool = False,
) -> ImportResult:
    """Import a CSV or JSON-lines file: good rows in one transaction, bad rows reported."""
    lists, sections, default = _known(ctx)
    good, rejects = subs.read_file(path, lists=lists, sections=sections, default_lists=default)
    result = ImportResult(
        path=str(path), rows=len(good) + len(rejects), rejected=rejects, dry_run=dry_run
    )
    if not good:
        return result
    if not force:  # a suppressed address is a bad row of its own, not the end of the import
        suppressed = ctx.store.suppressed_among([g.email for g in good])
        result.rejected += [
            subs.Reject(
                g.line,
                f"{g.email} is on the suppression list "
                f"({suppressed[g.email.casefold()]}); --force imports it",
            )
            for g in good
            if g.email.casefold() in suppressed
        ]
        result.rejected.sort(key=lambda r: r.line)
        good = [g for g in good if g.email.casefold() not in suppressed]
    counts = ctx.store.add_subscribers(
        good, now, existing=existing, allow_suppressed=force, dry_run=dry_run
    )
    result.added, result.updated, result.skipped = (
        counts["added"],
        counts["updated"],
        counts["skipped"],
    )
    return result


def set_status(ctx: Context, email: str, status: SubscriberStatus, now: datetime) -> Subscriber:
    return ctx.store.set_status(subs.normalize_email(email), status, now)


def unsubscribe(ctx: Context, email: str, list_name: str | None, now: datetime) -> Subscriber:
    """Unsubscribe from one list, or (without a list) from everything."""
    email = subs.normalize_email(email)
    if list_name is None:
        return ctx.store.set_status(email, SubscriberStatus.unsubscribed, now)
    sid = ctx.store.subscriber_id_for(email)
    if sid is None or not ctx.store.set_membership(sid, list_name, now, state="unsubscribed"):
        raise SubscriberError(f"{email} is not on the list {list_name!r}")
    return ctx.store.existing_subscriber(email)


def resubscribe(
    ctx: Context, email: str, list_name: str | None, now: datetime, *, force: bool = False
) -> Subscriber:
    return ctx.store.resubscribe(
        subs.normalize_email(email), now, list_name, lift_suppression=force
    )


def set_preferences(
    ctx: Context,
    email: str,
    list_name: str | None,
    now: datetime,
    *,
    sections: str | None = None,
    paused: bool | None = None,
    join: bool = False,
) -> Subscriber:
    """Change one subscription's sections ("" or "all": every section) or pause it; with
    ``join``, subscribe to the list first."""
    lst = ctx.newsletter.get_list(list_name)
    email = subs.normalize_email(email)
    sid = ctx.store.subscriber_id_for(email)
    if sid is None:
        raise SubscriberError(f"no subscriber {email}")
    chosen: frozenset[str] | str | None = "keep"
    if sections is not None:
        known = [s.slug for s in ctx.newsletter.sections_of(lst)]
        names = (
            ()
            if sections.strip().lower() == "all"
            else subs.parse_names(sections, known, "section")
        )
        chosen = frozenset(names) if names else None
    if not ctx.store.set_membership(
        sid, lst.name, now, sections=chosen, paused=paused, create=join
    ):
        raise SubscriberError(
            f"{email} is not on the list {lst.name!r}", "pass --join to subscribe them to it"
        )
    return ctx.store.existing_subscriber(email)
