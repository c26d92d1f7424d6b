"""Sections that change: `digest sections list` and `rename`, and the warning `check` and
`send` give when subscribers hold sections digest.toml no longer defines.

digest.toml is the truth about which sections exist; the store keeps what was stored under
a section that was dropped or renamed there (its articles, the readers who chose it). A reader
whose chosen sections are all gone gets nothing; renaming the section moves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from digest.errors import ConfigError
from digest.pipeline.context import Context
from digest.store.sections import SectionMove

RENAME_HINT = "move them with `digest sections rename OLD NEW`"


@dataclass(frozen=True)
class SectionRow:
    slug: str
    title: str
    lists: tuple[str, ...]  # the lists whose editions carry it (none: not in digest.toml)
    subscribers: int  # subscribers who chose it by name (those taking every section aside)
    articles: int  # stored articles filed under it
    defined: bool  # a section of digest.toml

    def as_dict(self) -> dict:
        return {
            "slug": self.slug,
            "title": self.title,
            "lists": list(self.lists),
            "subscribers": self.subscribers,
            "articles": self.articles,
            "in_digest_toml": self.defined,
        }


def list_sections(ctx: Context) -> list[SectionRow]:
    """The sections of digest.toml in its order, then those only the store still holds."""
    stored = ctx.store.stored_sections()
    articles = ctx.store.article_counts()
    holders: dict[str, int] = {}
    for chosen, count in ctx.store.section_choices():
        for slug in chosen:
            holders[slug] = holders.get(slug, 0) + count
    rows = [
        SectionRow(
            slug=s.slug,
            title=s.title,
            lists=tuple(
                lst.name
                for lst in ctx.newsletter.lists
                if s.slug in {x.slug for x in ctx.newsletter.sections_of(lst)}
            ),
            subscribers=holders.get(s.slug, 0),
            articles=articles.get(s.slug, 0),
            defined=True,
        )
        for s in ctx.newsletter.sections
    ]
    defined = {s.slug for s in ctx.newsletter.sections}
    # Dropped from digest.toml (or renamed there): shown while anything still holds them.
    for slug in sorted((set(holders) | set(articles)) - defined):
        rows.append(
            SectionRow(
                slug=slug,
                title=stored.get(slug, ""),
                lists=(),
                subscribers=holders.get(slug, 0),
                articles=articles.get(slug, 0),
                defined=False,
            )
        )
    return rows


def rename_section(
    ctx: Context, old: str, new: str, now: datetime, *, dry_run: bool = False
) -> SectionMove:
    """Move the readers who chose ``old`` (and the articles filed under it, so stories not
    sent yet follow) to ``new``, a section of digest.toml; frozen editions keep theirs."""
    old, new = old.strip(), new.strip()
    if ctx.newsletter.section(new) is None:
        raise ConfigError(
            f"{new!r} is not a section of {ctx.settings.config}",
            f"add a [[sections]] entry with slug = {new!r} there first, then rename",
        )
    if old == new:
        raise ConfigError(f"{old!r} and {new!r} are the same section")
    known = set(ctx.store.stored_sections()) | {
        slug for chosen, _ in ctx.store.section_choices() for slug in chosen
    }
    if old not in known:
        raise ConfigError(
            f"no section {old!r} is stored or chosen by any subscriber",
            "`digest sections list` shows the sections",
        )
    return ctx.store.rename_section(old, new, now, dry_run=dry_run)


def stale_section_warning(ctx: Context, list_name: str) -> str | None:
    """A warning when subscribers of the list chose sections digest.toml no longer defines:
    how many, which (with how many chose each), and what to do; None when there are none."""
    defined = {s.slug for s in ctx.newsletter.sections}
    per_section: dict[str, int] = {}
    readers = 0
    for chosen, count in ctx.store.section_choices(list_name):
        gone = chosen - defined
        if not gone:
            continue
        readers += count
        for slug in gone:
            per_section[slug] = per_section.get(slug, 0) + count
    if not readers:
        return None
    which = ", ".join(f"{slug} ({n})" for slug, n in sorted(per_section.items()))
    return (
        f"list {list_name}: {readers} subscriber(s) chose sections that are no longer in "
        f"digest.toml: {which}; they get nothing from them: {RENAME_HINT}"
    )
