"""Selection: which articles make an edition. Pure: everything comes in as arguments.

Per section of the list: the articles first seen since the list's previous edition (the first
edition looks back a window), none already mailed in an earlier edition of this list, the
same story in one section only, newest first, capped. Sections with nothing new are left out;
an edition with nothing at all is not made (``None``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo

from digest.config import SectionConfig
from digest.models import Article, Edition, Section


def edition_key(now: datetime, tz: tzinfo) -> str:
    """The key of the edition due at ``now``: the date in the list's time zone."""
    return now.astimezone(tz).date().isoformat()


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
) -> Edition | None:
    """Build the edition ``key`` of a list from candidate articles, or None if nothing is new."""
    by_section: dict[str, list[Article]] = {s.slug: [] for s in sections}
    for article in candidates:
        if article.key in already_sent or article.section not in by_section:
            continue
        seen = article.first_seen_at
        if seen is None or seen < since or seen > now:
            continue
        by_section[article.section].append(article)

    stories: set[str] = set()
    chosen: list[Section] = []
    for config in sections:
        picked: list[Article] = []
        for article in sorted(by_section[config.slug], key=_newest_first, reverse=True):
            story = _story(article)
            if story in stories:
                continue
            stories.add(story)
            picked.append(article)
            if len(picked) == config.max_articles:
                break
        if picked:
            chosen.append(Section(config.slug, config.title, tuple(picked)))
    if not chosen:
        return None
    return Edition(list_name=list_name, key=key, created_at=now, sections=tuple(chosen))
