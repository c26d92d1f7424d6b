"""Running the CLI through time: DIGEST_NOW moved by the test (the sample newsletter's clock
from a Monday in Europe/Oslo), a newsletter with a daily and a weekly list on a send time,
and a new article imported at a given moment."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.support.cli import run
from tests.support.values import ROOT

LIST_ZONE = ZoneInfo("Europe/Oslo")
START = datetime(2026, 11, 30, 0, 0, tzinfo=LIST_ZONE)  # a Monday, ISO week 49


def at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """Every command from now on acts at ``moment``."""
    monkeypatch.setenv("DIGEST_NOW", moment.isoformat())


def daily_and_weekly_config(folder: Path, zone: str, *, deliver_local: bool = False) -> str:
    """digest.toml (feeds read from the repository) with the list "daily" due at 06:15 and a
    list "weekly" due Mondays at 07:00, both in ``zone`` (``deliver_local``: each reader's
    own zone); written into ``folder``, its path returned."""
    text = (ROOT / "digest.toml").read_text().replace('"samples/', f'"{ROOT}/samples/')
    text = text.replace('timezone = "America/New_York"', f'timezone = "{zone}"')
    local = "\ndeliver_local = true" if deliver_local else ""
    text = text.replace('# send_at = "06:15"', f'send_at = "06:15"{local}')
    daily = text[text.index("[[lists]]") : text.index("[[sections]]")]
    weekly = daily.replace('name = "daily"', 'name = "weekly"', 1)
    weekly = weekly.replace('schedule = "daily"', 'schedule = "weekly:mon"')
    weekly = weekly.replace('send_at = "06:15"', 'send_at = "07:00"')
    path = folder / "digest.toml"
    path.write_text(text + "\n" + weekly)
    return str(path)


def new_article(folder: Path, day: int) -> None:
    """Import one new Launch Pad article, "Launch news of day N", at its own URL."""
    item = {
        "section": "launch-pad",
        "title": f"Launch news of day {day}",
        "url": f"https://news.orbital-dispatch.example/launch-pad/day-{day}.html",
        "summary": f"What happened on day {day}.",
    }
    path = folder / f"day{day}.jsonl"
    path.write_text(json.dumps(item) + "\n")
    run("articles", "import", str(path))
