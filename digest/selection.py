"""Selection: which articles make an edition. Pure: everything comes in as arguments.

Per section of the list: the articles first seen since the list's previous edition (the first
edition looks back a window), none already mailed in an earlier edition of this list, the
same story in one section only, newest first, capped; then the editor's curation (leads,
pins, drops, moves: ``digest.models.Curation``). Sections with nothing new are left out; an
edition with nothing at all is not made (``None``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from digest.config import SectionConfig
from digest.models import Article, Curation, Edition, EditionState, Section


def window_start(
    now: datetime, previous_edition_at: datetime | None, window_hours: int
) -> datetime:
    """Articles first seen at or after this time are new for the next edition."""
    if previous_edition_at is not None:
        return previous_edition_at
    return now - timedelta(hours=window_hours)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _newest_first(article: Article) -> tuple[datetime, datetime]:
    """Sort key: the feed's own date (clamped at ingest), then when digest first saw it."""
    seen = article.first_seen_at or _EPOCH
    return (article.published_at or seen, seen)


def _story(article: Article) -> str:
    """What makes two articles the same story: the link, without scheme or trailing slash."""
    url = article.url.split("://", 1)[-1].rstrip("/").lower()
    return url or article.key


def select_edition(
    *,
    list_name: str,
    key: str,
    sections: Sequence[SectionConfig],
    candidates: Iterable[Article],
    already_sent: Collection[str],
    since: datetime,
    now: datetime,
    curation: Curation | None = None,
    chosen: Iterable[Article] = (),
    max_age_hours: int = 0,
) -> Edition | None:
    """Build the draft ``key`` of a list from candidate articles and the editor's curation,
    or None if nothing is new.

    ``chosen`` holds the articles the curation brings in (its leads and pins), wherever they
    were found: they are selected whatever the window and the cap, unless already mailed by
    the list. Per section the lead comes first, then the pins, then the newest of the rest up
    to the cap; the curation's moves are applied last. An article whose own date was older
    than ``max_age_hours`` (a section's own ``max_age_hours`` first; 0: no limit) when digest
    first saw it is backlog, never news: only the editor can bring it in."""
    curation = curation or Curation()
    dropped = set(curation.drops)
    by_section: dict[str, list[Article]] = {s.slug: [] for s in sections}
    max_age = {
        s.slug: s.max_age_hours if s.max_age_hours is not None else max_age_hours for s in sections
    }
    for article in candidates:
        if article.key in already_sent or article.section not in by_section:
            continue
        seen = article.first_seen_at
        if seen is None or seen < since or seen > now or article.id in dropped:
            continue
        if is_stale(article, max_age[article.section]):
            continue
        by_section[article.section].append(article)

    forced = _forced(curation, chosen, by_section, already_sent)
    stories = {_story(article) for picks in forced.values() for article in picks}
    picked_ids = {article.id for picks in forced.values() for article in picks}
    chosen_sections: list[Section] = []
    for config in sections:
        picked = list(forced[config.slug])
        for article in sorted(by_section[config.slug], key=_newest_first, reverse=True):
            if len(picked) >= config.max_articles:
                break
            story = _story(article)
            if story in stories or article.id in picked_ids:
                continue
            stories.add(story)
            picked.append(article)
        if picked:
            picked = _moved(picked, curation.moves)
            chosen_sections.append(Section(config.slug, config.title, tuple(picked)))
    if not chosen_sections:
        return None
    return Edition(
        list_name=list_name,
        key=key,
        created_at=now,
        sections=tuple(chosen_sections),
        state=EditionState.draft,
        curation=curation,
    )


def is_stale(article: Article, max_age_hours: int) -> bool:
    """Whether the article was already older than ``max_age_hours`` when first seen (its own
    date, clamped at ingest, against when digest first saw it; undated articles never are)."""
    if not max_age_hours or article.published_at is None or article.first_seen_at is None:
        return False
    return article.first_seen_at - article.published_at > timedelta(hours=max_age_hours)


def _forced(
    curation: Curation,
    chosen: Iterable[Article],
    by_section: dict[str, list[Article]],
    already_sent: Collection[str],
) -> dict[str, list[Article]]:
    """Per section, the articles the editor brought in: the section's lead (the latest one
    chosen) first, then the pins in the order they were pinned."""
    available = {
        article.id: article
        for article in chosen
        if article.section in by_section
        and article.key not in already_sent
        and article.id not in curation.drops
    }
    forced: dict[str, list[Article]] = {slug: [] for slug in by_section}
    for article_id in curation.chosen:  # latest lead first, then pins
        article = available.get(article_id)
        if article is None:
            continue
        picks = forced[article.section]
        is_lead = article_id in curation.leads
        if is_lead and any(a.id in curation.leads for a in picks):
            # An earlier lead of the section gives way: it stays only if pinned (or new).
            is_lead = False
        if is_lead:
            picks.insert(0, article)
        elif article_id in curation.pins:
            picks.append(article)
    return forced


def _moved(articles: list[Article], moves: Sequence[tuple[int, int]]) -> list[Article]:
    """``articles`` with each (article id, position from 1) move applied in order."""
    order = list(articles)
    for article_id, position in moves:
        found = next((a for a in order if a.id == article_id), None)
        if found is None:
            continue
        order.remove(found)
        order.insert(max(0, min(position - 1, len(order))), found)
    return order
