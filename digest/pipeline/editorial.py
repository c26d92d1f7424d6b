"""The editor's desk: editions listed and shown, drafts curated, rebuilt, or refused once
frozen.

An edition is a draft until its first message is queued: every look (``show``, ``preview``,
``check``, the studio) builds it afresh from the current articles, digest.toml and the
curation stored with it. Curation names articles by the id ``show`` prints; each change is
checked against the draft as it stands, and refused once the edition is frozen.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from digest import periods
from digest.compose import note as editor_note
from digest.config import ListConfig
from digest.errors import ComposeError, EditionFrozen, SelectionError
from digest.models import Article, Curation, Edition, EditionState
from digest.pipeline.context import Context
from digest.pipeline.editions import build_draft, current_edition, next_key

ACTIONS = ("lead", "pin", "drop", "move", "clear")


def resolve_key(
    ctx: Context, lst: ListConfig, key: str, now: datetime, frequency: str | None = None
) -> str:
    """An edition key as the editor may write it: a date (a week, 2026-W49, or a month of
    a series the list offers), ``today`` or ``next`` (the next edition to go out: today's,
    unless its sending started; of the series of ``frequency``, None: the list's own)."""
    if key == "next":
        return next_key(ctx, lst, now, frequency)
    if key == "today":
        return lst.key_at(now, frequency)
    if periods.KEY_PATTERN.fullmatch(key) and ctx.store.edition(lst.name, key) is not None:
        return key  # a stored edition, perhaps of the list's schedule before a change
    schedule = lst.cadence
    if periods.KEY_PATTERN.fullmatch(key) and periods.key_kind(key) in lst.offered:
        schedule = lst.schedule_of(key)
    try:
        return periods.period_key(schedule, periods.first_day(schedule, key))
    except ValueError:
        example = periods.period_key(lst.cadence, now.astimezone(lst.tz).date())
        raise SelectionError(
            f"{key!r} is not an edition key of list {lst.name} ({lst.schedule})",
            f"write one such as {example}, today or next",
        ) from None


def edition_at(ctx: Context, lst: ListConfig, key: str, now: datetime) -> Edition | None:
    """The edition ``key`` of a list: frozen as sent, or its draft as it stands at ``now``
    (None: a draft with nothing new yet). A past date that was never sent has nothing to
    show, and says so."""
    stored = ctx.store.edition(lst.name, key)
    if stored is not None and stored.frozen:
        return stored
    if _past(lst, key, now):
        raise SelectionError(
            f"list {lst.name}: no edition {key} was sent",
            "a past date shows a sent edition; `digest editions list` lists them",
        )
    return build_draft(ctx, lst, key, now, stored)


def list_editions(ctx: Context, list_name: str | None, now: datetime) -> list[dict]:
    """The list's editions, newest first: the next one (a draft, stored or not) and every
    stored one, with their articles and ledger counts."""
    lst = ctx.newsletter.get_list(list_name)
    rows = ctx.store.editions_overview(lst.name)
    # The next edition of the list's own series, and of each other series a reader chose.
    series: list[str | None] = [None]
    series += [k for k in lst.other_series if ctx.store.frequency_chosen(lst.name, k)]
    for frequency in series:
        upcoming = next_key(ctx, lst, now, frequency)
        if all(row["key"] != upcoming for row in rows):
            rows.append(_unstored_row(upcoming))
    rows.sort(key=lambda row: (_due_date(lst, row["key"]), row["key"]), reverse=True)
    for row in rows:
        row["list"] = lst.name
        if row["state"] == EditionState.draft:  # its articles are the draft's of now
            draft = None if _past(lst, row["key"], now) else _draft(ctx, lst, row, now)
            row["articles"] = draft.article_count if draft is not None else 0
        row.pop("id", None)
    return rows


def _due_date(lst: ListConfig, key: str) -> date:
    """The date an edition of any of the list's series is due (newest first in a listing)."""
    try:
        return periods.due_date(lst.schedule_of(key), key)
    except ValueError:  # a key of a schedule the list had before
        return date.min


def _past(lst: ListConfig, key: str, now: datetime) -> bool:
    """Whether the period of ``key`` is over (compared within its series)."""
    return key < lst.key_at(now, periods.key_kind(key))


def _unstored_row(key: str) -> dict:
    return {
        "id": None,
        "key": key,
        "state": EditionState.draft.value,
        "articles": 0,
        "recipients": 0,
        "sent": 0,
        "failed": 0,
        "created_at": None,
        "frozen_at": None,
        "completed_at": None,
        "first_sent_at": None,
        "last_sent_at": None,
        "curated": False,
    }


def _draft(ctx: Context, lst: ListConfig, row: dict, now: datetime) -> Edition | None:
    stored = ctx.store.edition(lst.name, row["key"]) if row["id"] is not None else None
    return build_draft(ctx, lst, row["key"], now, stored)


def show_edition(ctx: Context, list_name: str | None, key: str, now: datetime) -> dict:
    """One edition: its state, sections and articles in order (each with the id curation
    names it by), the curation, the note's findings and the ledger's counts."""
    lst = ctx.newsletter.get_list(list_name)
    key = resolve_key(ctx, lst, key, now)
    edition = edition_at(ctx, lst, key, now)
    stored = ctx.store.edition(lst.name, key)
    return _view(ctx, lst, key, edition, stored)


def _view(
    ctx: Context, lst: ListConfig, key: str, edition: Edition | None, stored: Edition | None
) -> dict:
    known = edition or stored
    curation = known.curation if known is not None else Curation()
    state = stored.state if stored is not None else None
    counts = ctx.store.counts(stored.stored_id) if stored is not None and stored.frozen else {}
    return {
        "list": lst.name,
        "key": key,
        "state": (state or EditionState.draft).value,
        "stored": stored is not None,
        "created_at": stored.created_at if stored is not None else None,
        "frozen_at": stored.frozen_at if stored is not None else None,
        "sections": [
            {
                "slug": section.slug,
                "title": section.title,
                "articles": [
                    _article(a, i, curation, section.also_for(a))
                    for i, a in enumerate(section.articles)
                ],
            }
            for section in (edition.sections if edition is not None else ())
        ],
        "curation": {
            "leads": list(curation.leads),
            "pins": list(curation.pins),
            "drops": list(curation.drops),
            "moves": [list(m) for m in curation.moves],
            "note": curation.note,
        },
        "note_findings": [f"{sev}: {what}" for sev, what in editor_note.findings(curation.note)],
        "counts": counts,
        "recipients": sum(counts.values()),
    }


def _article(
    article: Article, index: int, curation: Curation, also: tuple[Article, ...] = ()
) -> dict:
    marks = []
    if index == 0:
        marks.append("lead")
    if article.id in curation.leads and index == 0:
        marks.append("chosen")
    if article.id in curation.pins:
        marks.append("pinned")
    if any(article.id == moved for moved, _ in curation.moves):
        marks.append("moved")
    return {
        "id": article.id,
        "title": article.title,
        "url": article.url,
        "published_at": article.published_at,
        "first_seen_at": article.first_seen_at,
        "marks": marks,
        # The other reports of the story, shown as its "Also:" links.
        "also": [{"id": a.id, "title": a.title, "url": a.url} for a in also],
    }


def rebuild(ctx: Context, list_name: str | None, key: str, now: datetime) -> dict:
    """Build a draft afresh and show it. An edition frozen before anything was queued (by a
    version of digest from before drafts) becomes a draft again; one whose sending started
    is refused, with the reason."""
    lst = ctx.newsletter.get_list(list_name)
    key = resolve_key(ctx, lst, key, now)
    stored = ctx.store.edition(lst.name, key)
    if stored is not None and stored.frozen and not ctx.store.reopen_edition(lst.name, key):
        raise _frozen(ctx, lst, stored)
    return show_edition(ctx, lst.name, key, now)


def _frozen(ctx: Context, lst: ListConfig, stored: Edition) -> EditionFrozen:
    queued = sum(ctx.store.counts(stored.stored_id).values())
    when = f" at {stored.frozen_at:%Y-%m-%d %H:%M} UTC" if stored.frozen_at else ""
    return EditionFrozen(
        f"list {lst.name}: edition {stored.key} is frozen: its sending started{when} "
        f"({queued} message{'s' * (queued != 1)} queued, state {stored.state})",
        "a frozen edition never changes, so a resumed or repeated run mails the same "
        "content; curate the next one (`digest editions show next`)",
    )


def curate(
    ctx: Context,
    list_name: str | None,
    key: str,
    action: str,
    now: datetime,
    article_id: int | None = None,
    position: int | None = None,
) -> dict:
    """Apply one curation ``action`` (lead, pin, drop, move, clear) to a draft, checked
    against the draft as it stands; returns the draft as it is now."""
    lst = ctx.newsletter.get_list(list_name)
    key = resolve_key(ctx, lst, key, now)
    stored = _draft_record(ctx, lst, key, now)
    curation = stored.curation if stored is not None else Curation()
    if action == "clear":
        changed = _cleared(curation, article_id)
    else:
        if article_id is None:
            raise SelectionError(f"editions {action}: name an article by its id")
        draft = build_draft(ctx, lst, key, now, stored)
        article = _eligible(ctx, lst, key, article_id, draft, action)
        # One lead per section: an earlier lead of the article's section gives way.
        leads = ctx.store.articles(ids=curation.leads)
        rivals = {a.id for a in leads if a.section == article.section}
        changed = _changed(curation, action, article, position, rivals)
    refused = ctx.store.save_curation(lst.name, key, changed, now)
    if refused is not None:  # frozen since it was read
        frozen = ctx.store.edition(lst.name, key)
        assert frozen is not None
        raise _frozen(ctx, lst, frozen)
    return show_edition(ctx, lst.name, key, now)


def set_note(ctx: Context, list_name: str | None, key: str, text: str, now: datetime) -> dict:
    """Store the editor's introduction of a draft (empty: none); refused when the markup has
    an error (a link that is not http or https)."""
    lst = ctx.newsletter.get_list(list_name)
    key = resolve_key(ctx, lst, key, now)
    stored = _draft_record(ctx, lst, key, now)
    problems = [what for sev, what in editor_note.findings(text) if sev == "error"]
    if problems:
        raise ComposeError(f"the note was not saved: {problems[0]}", "fix it and run again")
    curation = replace(stored.curation if stored is not None else Curation(), note=text.strip())
    refused = ctx.store.save_curation(lst.name, key, curation, now)
    if refused is not None:
        frozen = ctx.store.edition(lst.name, key)
        assert frozen is not None
        raise _frozen(ctx, lst, frozen)
    return show_edition(ctx, lst.name, key, now)


def _draft_record(ctx: Context, lst: ListConfig, key: str, now: datetime) -> Edition | None:
    """The stored draft row of ``key`` (None when it has none yet); refused when frozen or
    past."""
    stored = ctx.store.edition(lst.name, key)
    if stored is not None and stored.frozen:
        raise _frozen(ctx, lst, stored)
    if _past(lst, key, now):
        raise SelectionError(
            f"list {lst.name}: edition {key} is in the past and was never sent",
            "curate today's or a later edition: `digest editions show next`",
        )
    return stored


def _eligible(
    ctx: Context,
    lst: ListConfig,
    key: str,
    article_id: int,
    draft: Edition | None,
    action: str,
) -> Article:
    """The article ``article_id`` if ``action`` may name it in this draft."""
    found = ctx.store.articles(ids=[article_id])
    hint = f"`digest editions show {key}` lists the draft's articles with their ids"
    if not found:
        raise SelectionError(f"no article {article_id}", hint)
    article = found[0]
    in_draft = draft is not None and any(
        a.id == article_id for s in draft.sections for a in s.articles
    )
    if action in ("drop", "move") and not in_draft:
        raise SelectionError(f"article {article_id} is not in the draft {key}", hint)
    if article.section not in {s.slug for s in ctx.newsletter.sections_of(lst)}:
        raise SelectionError(
            f"article {article_id} is in section {article.section}, "
            f"which list {lst.name} does not have",
            hint,
        )
    if not in_draft and article.key in ctx.store.sent_article_keys(lst.name, periods.key_kind(key)):
        raise SelectionError(
            f"article {article_id} went out in an earlier edition of list {lst.name}", hint
        )
    return article


def _changed(
    curation: Curation,
    action: str,
    article: Article,
    position: int | None,
    rivals: set[int | None],
) -> Curation:
    """``curation`` with one choice applied (pure); ``rivals`` are the leads chosen before
    in the article's section, which a new lead replaces."""
    aid = article.id
    assert aid is not None
    without = _cleared(curation, aid)
    if action == "lead":
        return replace(without, leads=(*(i for i in without.leads if i not in rivals), aid))
    if action == "pin":
        return replace(without, pins=(*without.pins, aid))
    if action == "drop":
        return replace(without, drops=(*without.drops, aid))
    if action == "move":
        if position is None or position < 1:
            raise SelectionError("editions move: give the new position, from 1")
        moves = tuple(m for m in curation.moves if m[0] != aid)
        return replace(curation, moves=(*moves, (aid, position)))
    raise SelectionError(f"unknown curation {action!r}", f"one of {', '.join(ACTIONS)}")


def _cleared(curation: Curation, article_id: int | None) -> Curation:
    """``curation`` without any choice about ``article_id`` (None: without any choice and
    without the note)."""
    if article_id is None:
        return Curation()
    return Curation(
        leads=tuple(i for i in curation.leads if i != article_id),
        pins=tuple(i for i in curation.pins if i != article_id),
        drops=tuple(i for i in curation.drops if i != article_id),
        moves=tuple(m for m in curation.moves if m[0] != article_id),
        note=curation.note,
    )


def editorial_mark(ctx: Context) -> str:
    """A value that changes whenever a draft's content may (articles, curation, states)."""
    return ctx.store.editorial_mark()


def curation_lines(edition: Edition) -> list[str]:
    """The edition's state and curation in words, one line each (for the preview studio)."""
    if edition.frozen:
        lines = [f"edition {edition.key}: frozen, its sending started; it no longer changes"]
    else:
        lines = [f"edition {edition.key}: a draft, rebuilt at every look until it is sent"]
    curation = edition.curation
    titles = {a.id: a.title for s in edition.sections for a in s.articles}

    def named(ids: tuple[int, ...]) -> str:
        return "; ".join(f"{i} {titles[i]}" if i in titles else str(i) for i in ids)

    if curation.leads:
        lines.append(f"lead chosen: {named(curation.leads)}")
    if curation.pins:
        lines.append(f"pinned: {named(curation.pins)}")
    if curation.drops:
        lines.append(f"dropped: {', '.join(str(i) for i in curation.drops)}")
    if curation.moves:
        moves = ", ".join(f"{i} to place {p}" for i, p in curation.moves)
        lines.append(f"moved: {moves}")
    if curation.note:
        lines.append("with the editor's note")
    return lines


def preview_edition(
    ctx: Context,
    lst: ListConfig,
    now: datetime,
    *,
    next_edition: bool,
    on: str | None,
    frequency: str | None = None,
) -> Edition | None:
    """The edition a preview shows: today's (``current_edition``), the next one to go out
    (``next_edition``), or the one of the date ``on``; of the series of ``frequency``
    (None: the list's own); nothing is created."""
    if frequency is not None:
        try:
            frequency = lst.check_frequency(frequency)
        except ValueError as exc:
            raise SelectionError(str(exc)) from None
    if on is None and not next_edition:
        return current_edition(ctx, lst, now, create=False, frequency=frequency)
    key = resolve_key(ctx, lst, on or "next", now, frequency)
    return edition_at(ctx, lst, key, now)
