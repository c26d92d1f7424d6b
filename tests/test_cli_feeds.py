"""`digest fetch`, `digest feeds list` and `digest feeds check` end to end, through typer's
CliRunner, with a real HTTP server and a real SQLite file; and what a hostile feed leaves in
the email (nothing dangerous)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from digest.cli import app
from digest.store import open_store
from tests.support.cli import run, runner
from tests.support.values import ROOT, SAMPLES, SECRET


def write_newsletter(
    tmp_path, monkeypatch, *feeds: str, routed: str | None = None, db_url: str | None = None
):
    """A digest.toml with one section per feed (and optionally a routed feed)."""
    sections = "".join(
        f'[[sections]]\nslug = "s{n}"\ntitle = "Section {n}"\nfeeds = ["{f}"]\n'
        f'categories = ["Cat {n}"]\n\n'
        for n, f in enumerate(feeds)
    )
    routers = f'[[routers]]\nfeeds = ["{routed}"]\n' if routed else ""
    (tmp_path / "digest.toml").write_text(
        f"""
name = "Test"
website = "https://news.test.example"
summary_chars = 120
[[lists]]
name = "daily"
title = "Test Daily"
sender = "Test <news@test.example>"
postal_address = "1 Road, Town"
window_hours = 48
max_age_hours = 0  # its feeds carry fixed dates: tests must pass on any date
{sections}{routers}""",
        encoding="utf-8",
    )
    monkeypatch.setenv("DIGEST_CONFIG", str(tmp_path / "digest.toml"))
    monkeypatch.setenv("DIGEST_DATABASE_URL", db_url or f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("DIGEST_OUTBOX", str(tmp_path / "outbox"))
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)
    monkeypatch.setenv("DIGEST_FETCH_RETRIES", "0")


def test_feeds_check_shows_what_would_be_taken_and_stores_nothing(tmp_path):
    result = run("feeds", "check", str(SAMPLES / "launch-pad.xml"))
    assert "7 of 7 entries usable" in result.output
    assert "Heavy-lift rocket clears static fire ahead of December debut" in result.output
    data = json.loads(run("feeds", "check", str(SAMPLES / "launch-pad.xml"), "--json").stdout)
    assert (data["usable"], data["version"], len(data["entries"])) == (True, "rss20", 7)
    first = data["entries"][0]
    assert first["image"].startswith("https://") and 0 < first["summary_chars"] <= 401
    assert not list(tmp_path.glob("**/*.db"))  # no configuration needed, nothing stored


def test_feeds_check_lists_the_problems_of_a_usable_feed(feed_server):
    url = feed_server.add(
        "/feed", body=(SAMPLES / "internet-space.xml").read_bytes(), content_type="text/html"
    )
    feed_server.add("/old", status=301, location="/feed")
    result = run("feeds", "check", feed_server.url("/old"))
    assert "7 of 7 entries usable" in result.output
    problems = [line for line in result.stderr.splitlines() if line.startswith("problem: ")]
    assert problems == [
        "problem: the server sends neither ETag nor Last-Modified: every fetch downloads the "
        "whole feed",
        "problem: served as text/html, not as a feed type (read as a feed anyway)",
        f"problem: redirected (1x) to {url}: consider using that address",
    ]


@pytest.mark.parametrize(
    "make,reason",
    [
        (
            lambda s, t: s.add(
                "/page",
                body=b"<!DOCTYPE html><html><body>Sorry</body></html>",
                content_type="text/html",
            ),
            "not a feed: an HTML page, not RSS or Atom",
        ),
        (
            lambda s, t: s.add("/gone", status=404, body=b"", content_type="text/plain"),
            "HTTP 404 Not Found",
        ),
        (lambda s, t: str(t / "absent.xml"), "no such file"),
        (
            lambda s, t: str(ROOT / "tests/data/feeds/illformed/rss-parser/unrecognized.rss"),
            "not a feed: an HTML page, not RSS or Atom",
        ),
    ],
)
def test_feeds_check_of_an_unusable_feed_exits_4_with_one_line(feed_server, tmp_path, make, reason):
    source = make(feed_server, tmp_path)
    result = run("feeds", "check", source, code=4)
    assert result.stderr == f"unusable: {source}: {reason}\n"
    data = json.loads(run("feeds", "check", source, "--json", code=4).stdout)
    assert (data["usable"], data["reason"]) == (False, reason)


def test_fetch_then_feeds_list_shows_each_feeds_health(feed_server, tmp_path, monkeypatch):
    good = feed_server.add("/good.xml", body=(SAMPLES / "launch-pad.xml").read_bytes(), etag='"1"')
    bad = feed_server.add("/bad.xml", status=503, body=b"", content_type="text/plain")
    write_newsletter(tmp_path, monkeypatch, good, bad)
    fetched = run("fetch", "--json")
    data = json.loads(fetched.stdout)
    assert (data["added"], data["failed"], data["parsed"]) == (7, 1, 1)
    again = json.loads(run("fetch", "--json").stdout)
    assert (again["added"], again["parsed"]) == (0, 0)  # the 304 was not parsed
    rows = [
        json.loads(line) for line in run("feeds", "list", "--format", "json").stdout.splitlines()
    ]
    assert [(r["url"], r["status"], r["entries"], r["failures"], r["flag"]) for r in rows] == [
        (good, "not-modified", 7, 0, ""),
        (bad, "error", None, 2, ""),
    ]
    assert rows[1]["error"] == "HTTP 503 Service Unavailable"


def test_send_flags_a_feed_failing_for_days(feed_server, tmp_path, monkeypatch, db_url):
    good = str(SAMPLES / "launch-pad.xml")
    bad = feed_server.add("/bad.xml", status=500, body=b"", content_type="text/plain")
    write_newsletter(tmp_path, monkeypatch, good, bad, db_url=db_url)
    run("init")
    run("subscribers", "add", "reader@example.org")  # the feeds have their rows from here on
    store = open_store(db_url)
    long_ago = datetime.now(UTC) - timedelta(days=4, minutes=1)
    try:
        store.record_feed(bad, status="error", now=long_ago, error="HTTP 500 Internal Server Error")
    finally:
        store.close()
    run("fetch")  # fails again: the run of failures still began four days ago
    result = runner.invoke(app, ["send", "--json"])
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["feed_warnings"] == [
        f"feed {bad} (s1) failing for 4 days (2 fetches in a row): HTTP 500 Internal Server Error"
    ]
    listed = run("feeds", "list", "--format", "json").stdout.splitlines()
    assert json.loads(listed[1])["flag"] == "FAILING"


HOSTILE_FEED = """<?xml version="1.0"?><rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>Hostile</title><link>https://hostile.example/</link>
<item><title><![CDATA[Breaking <script>alert(1)</script>news<img src=x onerror=alert(2)>]]></title>
<link>https://hostile.example/a?utm_source=feed&amp;id=1</link><guid>h1</guid>
<category>Cat 0</category>
<description><![CDATA[<p onclick="steal()">Read <a href="javascript:alert(3)">more</a></p>
<style>.x{background:url(hostile-css)}</style><iframe src="https://evil.example/"></iframe>
<img src="javascript:alert(4)"> The story.]]></description>
<media:content url="javascript:alert(5)" medium="image"/>
<pubDate>Tue, 24 Nov 2026 08:00:00 GMT</pubDate></item>
</channel></rss>"""


def test_nothing_dangerous_from_a_feed_reaches_the_email(tmp_path, monkeypatch):
    feed = tmp_path / "hostile.xml"
    feed.write_text(HOSTILE_FEED, encoding="utf-8")
    write_newsletter(tmp_path, monkeypatch, str(feed))
    run("init")
    run("fetch")
    run("preview", "--out", str(tmp_path / "preview"))
    html = (tmp_path / "preview" / "digest.html").read_text(encoding="utf-8").lower()
    text = (tmp_path / "preview" / "digest.txt").read_text(encoding="utf-8").lower()
    assert "breaking" in html and "the story." in html
    for bad in (
        "<script",
        "javascript:",
        "onerror",
        "onclick",
        "<iframe",
        "evil.example",
        "hostile-css",
        "utm_source",
    ):
        assert bad not in html, bad
        assert bad not in text, bad
