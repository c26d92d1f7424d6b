"""Selection: which articles make an edition. Pure: everything comes in as arguments.

Per section of the list: the articles first seen since the list's previous edition (the first
edition looks back a window), none already mailed in an earlier edition of this list; the
reports of one story (from several feeds, in any section) grouped into one, shown once in
the section of its best report with the others as "also" links (``digest.stories``); ranked
by the editor's curation (leads, pins: ``digest.models.Curation``), then how many sites
carry the story, then recency; capped; the curation's drops and moves applied. Sections
with nothing new are left out; an edition with nothing at all is not made (``None``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from digest.config import SectionConfig
from digest.models import Article, Curation, Edition, EditionState, Section
from digest.stories import Story, group_reports, rank_stories, same_page


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


def _also(story: Story, dropped: Collection[int | None]) -> tuple[Article, ...]:
    """The other reports of a story worth a link: not dropped, each page once, none on the
    page of the report shown."""
    pages = {same_page(story.lead.url)}
    also: list[Article] = []
    for article in story.also:
        page = same_page(article.url)
        if article.id in dropped or page in pages:
            continue
        pages.add(page)
        also.append(article)
    return tuple(also)


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
    the list. Reports of one story are grouped (``digest.stories.group_reports``): an
    editor's pick, else the newest report, is shown, in its own section, and the others go
    into ``Section.also``; a dropped report drops its story. Per section the lead comes
    first, then the pins, then the rest by how many sites carry the story and recency
    (``digest.stories.rank_stories``) up to the cap; the curation's moves are applied
    last. An article whose own date was older than ``max_age_hours`` (a section's own
    ``max_age_hours`` first; 0: no limit) when digest first saw it is backlog, never news:
    only the editor can bring it in."""
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
        if seen is None or seen < since or seen > now:
            continue
        if is_stale(article, max_age[article.section]):
            continue
        by_section[article.section].append(article)

    forced = _forced(curation, chosen, by_section, already_sent)
    # The editor's picks lead their stories, then the newest report of each story does.
    first = [article for picks in forced.values() for article in picks]
    forced_ids = {article.id for article in first}
    rest = [a for picks in by_section.values() for a in picks if a.id not in forced_ids]
    stories_by_section: dict[str, list[Story]] = {slug: [] for slug in by_section}
    for story in group_reports([*first, *sorted(rest, key=_newest_first, reverse=True)]):
        if story.lead.id not in forced_ids and any(a.id in dropped for a in story.reports):
            continue  # a dropped story stays out, whichever site reported it
        stories_by_section[story.lead.section].append(Story(story.lead, _also(story, dropped)))
    chosen_sections: list[Section] = []
    for config in sections:
        picks = [a.id for a in forced[config.slug] if a.id is not None]
        lead = picks[:1] if picks and picks[0] in curation.leads else []
        ranked = rank_stories(stories_by_section[config.slug], leads=lead, pins=picks)
        # The editor's picks stay whatever the cap; the best of the rest fill it up.
        kept = ranked[: max(config.max_articles, sum(s.lead.id in forced_ids for s in ranked))]
        if kept:
            picked = _moved([story.lead for story in kept], curation.moves)
            reports = {story.lead.key: story.also for story in kept if story.also}
            chosen_sections.append(Section(config.slug, config.title, tuple(picked), reports))
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
