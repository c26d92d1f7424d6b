"""Weeks of cron runs through the CLI: the sample newsletter's clock (DIGEST_NOW) from a
Monday in Europe/Oslo, and one new article a day."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.support.cli import run

LIST_ZONE = ZoneInfo("Europe/Oslo")
START = datetime(2026, 11, 30, 0, 0, tzinfo=LIST_ZONE)  # a Monday, ISO week 49


def at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """Every command from now on acts at ``moment``."""
    monkeypatch.setenv("DIGEST_NOW", moment.isoformat())


def new_article(folder: Path, day: int) -> None:
    """`digest articles import` of one Launch Pad article of day ``day``."""
    item = {
        "section": "launch-pad",
        "title": f"Launch news of day {day}",
        "url": f"https://news.orbital-dispatch.example/launch-pad/day-{day}.html",
        "summary": f"What happened on day {day}.",
    }
    path = folder / f"day{day}.jsonl"
    path.write_text(json.dumps(item) + "\n")
    run("articles", "import", str(path))
