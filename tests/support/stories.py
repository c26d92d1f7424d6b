"""The labelled rewrites of tests/data/stories: one wire story as two sites wrote it."""

from __future__ import annotations

import json
from datetime import timedelta

from digest.models import Article
from tests.support.values import DATA, NOW

REWRITES = json.loads((DATA / "stories" / "rewrites.json").read_text())


def report(n: int, side: str = "a", **changes) -> Article:
    """Side ``a`` or ``b`` of labelled pair ``n`` as an article (id ``10 n`` or ``10 n + 1``)."""
    fields = dict(
        REWRITES[n][side],
        id=n * 10 + (side == "b"),
        key=REWRITES[n][side]["url"],
        section="news",
        first_seen_at=NOW - timedelta(hours=1),
    )
    fields.update(changes)
    return Article(**fields)
