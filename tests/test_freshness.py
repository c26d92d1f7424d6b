"""Freshness through the CLI: a feed's backlog is never selected, and a feed whose newest
entry is old is flagged by `feeds list` and `feeds check`. DIGEST_NOW fixes the clock."""

from __future__ import annotations

import json

from tests.support.cli import run, set_settings
from tests.support.values import SECRET

CLOCK = "2026-12-01T05:00:00+00:00"


def _feed(path, dates: list[str]) -> None:
    items = "".join(
        f"<item><title>Story dated {d}</title><link>https://news.example/{i}</link>"
        f"<guid>story-{i}</guid><pubDate>{d}</pubDate><description>Text {i}.</description></item>"
        for i, d in enumerate(dates)
    )
    path.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://news.example/</link><description>D</description>{items}</channel></rss>"
    )


def _setup(monkeypatch, tmp_path, db_url, dates: list[str]):
    feed = tmp_path / "feed.xml"
    _feed(feed, dates)
    config = tmp_path / "digest.toml"
    config.write_text(
        'name = "N"\nwebsite = "https://news.example"\n[[lists]]\nname = "daily"\n'
        'title = "Daily"\nsender = "N <n@news.example>"\n'
        'postal_address = "N, 1 Street, Town"\n'
        '[[sections]]\nslug = "news"\ntitle = "News"\nfeeds = ["feed.xml"]\n'
    )
    set_settings(
        monkeypatch,
        {
            "DIGEST_CONFIG": str(config),
            "DIGEST_DATABASE_URL": db_url,
            "DIGEST_SECRET_KEY": SECRET,
            "DIGEST_NOW": CLOCK,
        },
    )
    run("init")
    run("fetch")
    return feed


def test_a_feeds_backlog_is_never_selected_but_its_fresh_entries_are(monkeypatch, tmp_path, db_url):
    _setup(
        monkeypatch,
        tmp_path,
        db_url,
        [
            "Mon, 30 Nov 2026 20:00:00 GMT",
            "Tue, 15 Mar 2011 09:00:00 GMT",
            "Mon, 01 Jun 2020 09:00:00 GMT",
        ],
    )
    view = json.loads(run("editions", "show", "today", "--json").stdout)
    titles = [a["title"] for s in view["sections"] for a in s["articles"]]
    assert titles == ["Story dated Mon, 30 Nov 2026 20:00:00 GMT"]
    rows = [json.loads(r) for r in run("feeds", "list", "--format", "json").stdout.splitlines()]
    assert rows[0]["flag"] == "" and rows[0]["newest_entry"].startswith("2026-11-30")


def test_a_feed_whose_newest_entry_is_old_is_flagged_stale(monkeypatch, tmp_path, db_url):
    feed = _setup(monkeypatch, tmp_path, db_url, ["Tue, 15 Mar 2011 09:00:00 GMT"])
    rows = [json.loads(r) for r in run("feeds", "list", "--format", "json").stdout.splitlines()]
    assert rows[0]["flag"] == "STALE"
    report = json.loads(run("feeds", "check", str(feed), "--json").stdout)
    assert report["usable"] and any("looks abandoned" in p for p in report["problems"])
    assert "no articles for an edition" in run("check", code=7).stderr
    monkeypatch.setenv("DIGEST_FEED_STALE_DAYS", "0")
    rows = [json.loads(r) for r in run("feeds", "list", "--format", "json").stdout.splitlines()]
    assert rows[0]["flag"] == ""


def test_digest_now_must_carry_its_offset(monkeypatch):
    monkeypatch.setenv("DIGEST_NOW", "2026-12-01T05:00:00")
    result = run("lists", "list", code=2)
    assert "DIGEST_NOW" in result.stderr
