"""Which section an entry goes to when one feed covers several sections.

A section names the feed categories it takes (``categories = [...]`` in digest.toml); a feed
listed under ``[[routers]]`` has each entry filed under the section that takes one of the
entry's categories. The entry's categories are tried in the feed's order (a feed lists an
entry's main category first), and for each the sections in the newsletter's order. Matching
ignores case and repeated whitespace, and a hierarchical category ("World/Missile Defense",
"News > Drones") also matches on its last part. An entry no section takes goes to the
router's fallback section, or is left out when it has none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_HIERARCHY = re.compile(r"\s*[/>]\s*")


def normalize(category: str) -> str:
    return " ".join(category.split()).casefold()


def _forms(category: str) -> list[str]:
    """The ways a category can match: whole, then its last part when it is a path."""
    whole = normalize(category)
    last = _HIERARCHY.split(whole)[-1]
    return [whole] if last == whole or not last else [whole, last]


@dataclass(frozen=True)
class Router:
    """The category rules of a newsletter, and one router feed's fallback section."""

    rules: tuple[tuple[str, frozenset[str]], ...]  # (section slug, normalized categories)
    fallback: str | None = None

    @classmethod
    def build(
        cls, sections: Iterable[tuple[str, Sequence[str]]], fallback: str | None = None
    ) -> Router:
        rules = tuple(
            (slug, frozenset(normalize(c) for c in categories))
            for slug, categories in sections
            if categories
        )
        return cls(rules, fallback)

    def section_for(self, categories: Sequence[str]) -> str | None:
        """The section an entry with these categories is filed under, or None."""
        for category in categories:
            for form in _forms(category):
                for slug, taken in self.rules:
                    if form in taken:
                        return slug
        return self.fallback
