"""The ingest stage end to end: feeds from a real HTTP server and files into a real SQLite store,
and the JSON-lines import."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from digest import pipeline
from digest.config import ListConfig, Newsletter, RouterConfig, SectionConfig
from digest.errors import FeedError
from digest.feeds import FetchPolicy
from digest.ingest import ROUTED, failing_feeds, feed_health, import_articles, ingest, read_jsonl
from digest.store.protocols import ArticleStore
from tests.support.httpd import FeedServer, Route, closed_port_url
from tests.support.narrowed import Narrowed
from tests.support.values import NOW, ROOT, SAMPLE_COUNTS, SAMPLES

# The sample newsletter's sections are named after the sample feeds.
SECTION_COUNTS = {name.split(".")[0]: count for name, count in SAMPLE_COUNTS.items()}


def newsletter_with(
    *sections: tuple[str, list[str]],
    categories: dict | None = None,
    routers: tuple[RouterConfig, ...] = (),
) -> Newsletter:
    categories = categories or {}
    return Newsletter(
        name="Test Dispatch",
        website="https://news.test-dispatch.example",
        lists=(
            ListConfig(
                name="daily",
                title="Daily",
                sender="News <news@example.org>",
                postal_address="1 Road, Town",
            ),
        ),
        sections=tuple(
            SectionConfig(
                slug=slug,
                title=slug.title(),
                feeds=tuple(feeds),
                categories=tuple(categories.get(slug, ())),
            )
            for slug, feeds in sections
        ),
        routers=routers,
    )


def feed_of(*items: tuple) -> bytes:
    """An RSS document of (guid, title[, categories]) items."""
    body = "".join(
        f"<item><title>{title}</title><guid>{guid}</guid>"
        f"<link>https://e.org/{guid}</link><description>About {title}.</description>"
        + "".join(f"<category>{c}</category>" for c in (cats[0] if cats else ()))
        + "<pubDate>Tue, 24 Nov 2026 08:00:00 GMT</pubDate></item>"
        for guid, title, *cats in items
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://e.org/</link>{body}</channel></rss>"
    ).encode()


def test_ingest_of_the_sample_newsletter_fills_every_section(store, newsletter):
    seen = []
    report = ingest(store, newsletter, NOW, on_feed=seen.append)
    assert report.added == sum(SECTION_COUNTS.values()) and report.failed == 0
    assert list(seen) == list(report.feeds)
    for outcome in report.feeds:
        assert (outcome.status, outcome.added, outcome.error) == ("ok", outcome.entries, None)
        assert outcome.entries == SECTION_COUNTS[outcome.section]
        stored = store.articles(section=outcome.section)
        assert len(stored) == outcome.entries
        assert all(a.first_seen_at == NOW and a.dateline for a in stored)
        assert store.feed(outcome.url).last_status == "ok"
    again = ingest(store, newsletter, NOW + timedelta(hours=1))
    assert (again.added, again.updated, again.failed) == (0, 0, 0)
    assert len(store.articles()) == sum(SECTION_COUNTS.values())


def test_conditional_get_round_trip_through_ingest(store, feed_server):
    url = feed_server.add(
        "/internet.xml",
        body=(SAMPLES / "internet-space.xml").read_bytes(),
        etag='"abc"',
        last_modified="Wed, 25 Nov 2026 16:10:00 GMT",
    )
    letter = newsletter_with(("internet-space", [url]))
    first = ingest(store, letter, NOW)
    assert [(f.status, f.added) for f in first.feeds] == [("ok", 7)]
    assert store.feed(url).etag == '"abc"'
    second = ingest(store, letter, NOW + timedelta(hours=1))
    assert [(f.status, f.added, f.updated, f.error) for f in second.feeds] == [
        ("not-modified", 0, 0, None)
    ]
    asked = feed_server.requests_to("/internet.xml")
    assert len(asked) == 2 and asked[1].headers["if-none-match"] == '"abc"'
    assert asked[0].headers["user-agent"] == "digest/0.1.0 (+https://news.test-dispatch.example)"
    record = store.feed(url)
    assert (record.last_status, record.etag, record.entries) == ("not-modified", '"abc"', 7)
    assert len(store.articles()) == 7


def test_refetching_a_changed_feed_adds_only_what_is_new(store, feed_server):
    url = feed_server.add("/feed.xml", body=feed_of(("a", "Alpha"), ("b", "Beta")), etag='"1"')
    letter = newsletter_with(("news", [url]))
    assert ingest(store, letter, NOW).added == 2
    later = NOW + timedelta(hours=3)
    feed_server.add(
        "/feed.xml", body=feed_of(("c", "Gamma"), ("a", "Alpha"), ("b", "Beta revised")), etag='"2"'
    )
    report = ingest(store, letter, later)
    assert (report.added, report.updated) == (1, 1)
    stored = {a.key: a for a in store.articles()}
    assert set(stored) == {"guid:a", "guid:b", "guid:c"}
    assert stored["guid:b"].title == "Beta revised"
    assert stored["guid:b"].first_seen_at == NOW  # a correction is not news
    assert stored["guid:c"].first_seen_at == later
    assert store.feed(url).etag == '"2"'


def test_broken_feeds_are_recorded_and_the_others_go_on(store, feed_server, tmp_path):
    html = feed_server.add(
        "/page", body=b"<!DOCTYPE html><html><body>Hi</body></html>", content_type="text/html"
    )
    missing = feed_server.add("/gone", status=404, body=b"gone", content_type="text/plain")
    good = feed_server.add("/good.xml", body=feed_of(("a", "Alpha")))
    refused = closed_port_url()
    absent = str(tmp_path / "absent.xml")
    letter = newsletter_with(("one", [html, good]), ("two", [refused, absent, missing]))
    seen = []
    report = ingest(store, letter, NOW, on_feed=seen.append)
    assert [(f.url, f.status) for f in seen] == [
        (html, "error"),
        (good, "ok"),
        (refused, "error"),
        (absent, "error"),
        (missing, "error"),
    ]
    assert (report.added, report.failed) == (1, 4)
    errors = {f.url: f.error for f in report.feeds}
    assert errors == {
        html: "not a feed: an HTML page, not RSS or Atom",
        good: None,
        refused: "connection refused",
        absent: "no such file",
        missing: "HTTP 404 Not Found",
    }
    for url, error in errors.items():
        record = store.feed(url)
        assert (record.last_error, record.last_status) == (error, "error" if error else "ok")


def test_an_article_stays_in_the_section_that_filed_it_first(store, feed_server):
    first = feed_server.add(
        "/first.xml", body=feed_of(("shared", "Shared story"), ("x", "Only first"))
    )
    second = feed_server.add(
        "/second.xml", body=feed_of(("shared", "Shared story"), ("y", "Only second"))
    )
    report = ingest(store, newsletter_with(("alpha", [first]), ("beta", [second])), NOW)
    assert [(f.section, f.added) for f in report.feeds] == [("alpha", 2), ("beta", 1)]
    assert report.feeds[1].warnings == ("1 entry already filed under another section kept there",)
    # The next run meets the sections in the other order; the stored article does not move.
    ingest(store, newsletter_with(("beta", [second]), ("alpha", [first])), NOW)
    assert {a.key: a.section for a in store.articles()} == {
        "guid:shared": "alpha",
        "guid:x": "alpha",
        "guid:y": "beta",
    }


def write_lines(path, *lines) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def good_row(**fields) -> str:
    row = {"section": "news", "title": "A title", "url": "https://e.org/a"} | fields
    return json.dumps(row)


def test_read_jsonl_keeps_good_rows_and_names_the_bad_lines(tmp_path):
    path = tmp_path / "articles.jsonl"
    write_lines(
        path,
        good_row(
            summary="<p>Seoul (AFP) Nov 24, 2026 - Text <b>here</b>.</p><script>x()</script>",
            byline="Staff\r\nWriters",
            guid="g-1",
            published_at="2026-11-24T08:00:00+09:00",
            image="https://img.e.org/a.jpg",
        ),
        "",
        '{"section": "news" "title": "x"}',
        good_row(section="foo"),
        good_row(url="/relative/path"),
        good_row(title="  "),
        good_row(url="https://e.org/b", published_at="2099-01-01T00:00:00"),
        "[1, 2]",
        good_row(image="javascript:alert(1)"),
        good_row(published_at="yesterday"),
        good_row(summery="typo"),
        good_row(title=7),
    )
    articles, rejects = read_jsonl(path, sections={"news", "other"}, now=NOW)
    assert rejects == [
        (3, "not JSON: Expecting ',' delimiter"),
        (4, "unknown section 'foo'"),
        (5, "url must be an absolute http(s) URL"),
        (6, "title is missing"),
        (8, "not a JSON object"),
        (9, "image must be an absolute http(s) URL"),
        (10, "published_at 'yesterday' is not an ISO 8601 date"),
        (
            11,
            "unknown field 'summery' (fields: byline, dateline, guid, image, image_height, "
            "image_width, published_at, section, summary, title, url)",
        ),
        (12, "title must be a string"),
    ]
    first, future = articles
    assert (first.key, first.dateline, first.summary, first.byline) == (
        "guid:g-1",
        "Seoul (AFP) Nov 24, 2026",
        "Text here.",
        "Staff Writers",
    )
    assert first.published_at == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)
    assert (future.key, future.published_at) == ("url:https://e.org/b", NOW)


def test_an_imported_image_keeps_its_size_given_whole_and_together(tmp_path):
    path = tmp_path / "articles.jsonl"
    image = "https://img.e.org/a.jpg"
    write_lines(
        path,
        good_row(url="https://e.org/1", image=image, image_width=640, image_height=360),
        good_row(url="https://e.org/2", image=image),
        good_row(url="https://e.org/3", image=image, image_width=640),
        good_row(url="https://e.org/4", image_width=640, image_height=360),
        good_row(url="https://e.org/5", image=image, image_width="640", image_height=360),
        good_row(url="https://e.org/6", image=image, image_width=0, image_height=360),
        good_row(url="https://e.org/7", image=image, image_width=640, image_height=20_001),
        good_row(url="https://e.org/8", image=image, image_width=640.5, image_height=360),
        good_row(url="https://e.org/9", image=image, image_width=True, image_height=360),
    )
    articles, rejects = read_jsonl(path, sections={"news"}, now=NOW)
    assert [(a.url, a.image_width, a.image_height) for a in articles] == [
        ("https://e.org/1", 640, 360),
        ("https://e.org/2", None, None),
    ]
    pixels = "must be a whole number of pixels from 1 to 20000"
    assert rejects == [
        (3, "image_width and image_height go together"),
        (4, "image_width and image_height need an image"),
        (5, f"image_width {pixels}"),
        (6, f"image_width {pixels}"),
        (7, f"image_height {pixels}"),
        (8, f"image_width {pixels}"),
        (9, f"image_width {pixels}"),
    ]


def test_ingest_needs_nothing_of_the_store_but_its_protocol(store, newsletter, tmp_path):
    narrowed = Narrowed(store, ArticleStore)
    assert ingest(narrowed, newsletter, NOW).added == sum(SECTION_COUNTS.values())
    assert len(feed_health(narrowed, newsletter, NOW, failing_days=3)) == len(SECTION_COUNTS)
    assert failing_feeds(narrowed, newsletter, NOW, 3) == []
    path = tmp_path / "import.jsonl"
    write_lines(path, good_row(section="launch-pad", guid="one"))
    assert import_articles(narrowed, path, NOW, sections=set(SECTION_COUNTS)) == (1, 0, [])


def test_import_articles_saves_the_good_rows_and_reports_the_rest(store, tmp_path):
    store.sync_sections([("news", "News", []), ("other", "Other", [])])
    store.save_articles([read_jsonl_one(tmp_path, good_row(section="other", guid="taken"))], NOW)
    path = tmp_path / "import.jsonl"
    write_lines(
        path,
        good_row(guid="one"),
        good_row(guid="two", url="https://e.org/two"),
        good_row(section="nope"),
        good_row(guid="one", title="Again"),
        good_row(guid="taken"),
    )
    added, updated, rejects = import_articles(store, path, NOW, sections={"news", "other"})
    assert (added, updated) == (2, 0)
    assert rejects == [
        (3, "unknown section 'nope'"),
        (4, "the same article as line 1"),
        (5, "already stored under section 'other'"),
    ]
    assert {a.key: a.section for a in store.articles()} == {
        "guid:one": "news",
        "guid:two": "news",
        "guid:taken": "other",
    }
    write_lines(path, good_row(guid="one", title="Corrected"))
    assert import_articles(store, path, NOW, sections={"news"}) == (0, 1, [])


def read_jsonl_one(tmp_path, line: str):
    path = tmp_path / "one.jsonl"
    write_lines(path, line)
    (article,), rejects = read_jsonl(path, sections={"news", "other"}, now=NOW)
    assert rejects == []
    return article


def test_importing_a_missing_file_is_a_feed_error(store, tmp_path):
    with pytest.raises(FeedError, match=r"absent\.jsonl: no such file"):
        import_articles(store, tmp_path / "absent.jsonl", NOW, sections={"news"})


# -- concurrency, 304, routing, identity, health ------------------------------------------------

QUICK = FetchPolicy(read_timeout=0.3, retries=0)


def test_feeds_are_fetched_at_once_and_one_stuck_feed_stops_no_other(store, feed_server):
    urls = [feed_server.add(f"/f{n}.xml", body=feed_of((f"a{n}", f"Story {n}"))) for n in range(10)]
    stuck = feed_server.add("/stuck.xml", Route(hang=True))
    letter = newsletter_with(("one", [*urls[:5], stuck]), ("two", urls[5:]))
    report = ingest(store, letter, NOW, policy=QUICK, concurrency=4)
    # Reported in the newsletter's order, whatever order the servers answered in.
    assert [f.url for f in report.feeds] == [*urls[:5], stuck, *urls[5:]]
    assert (report.added, report.failed) == (10, 1)
    assert report.feeds[5].error == "timed out after 0.3 s"


def test_a_304_costs_no_parse(store, feed_server):
    urls = [
        feed_server.add(f"/f{n}.xml", body=feed_of((f"a{n}", "A")), etag=f'"{n}"') for n in range(3)
    ]
    letter = newsletter_with(("news", urls))
    assert ingest(store, letter, NOW).parses == 3
    again = ingest(store, letter, NOW + timedelta(hours=1))
    assert [f.status for f in again.feeds] == ["not-modified"] * 3
    assert again.parses == 0 and not any(f.parsed for f in again.feeds)


def _workers_seen(before: set[int], seen: list[int]):
    """An ``on_feed`` that records how many worker processes ingest has started so far."""
    import multiprocessing

    return lambda _feed: seen.append(
        len({p.pid for p in multiprocessing.active_children()} - before)
    )


def test_large_documents_are_parsed_in_worker_processes_with_the_same_outcome_in_order(
    store, feed_server
):
    import multiprocessing

    def big(n: int) -> bytes:
        return feed_of(*((f"f{n}e{e}", f"Story {e} " + "word " * 60) for e in range(120)))

    assert len(big(0)) > 32_768  # POOL_BYTES: each is parsed in a worker process
    urls = [feed_server.add(f"/big{n}.xml", body=big(n)) for n in range(3)]
    page = feed_server.add(
        "/page",
        body=b"<!DOCTYPE html><html><body>" + b"Hi " * 20_000 + b"</body></html>",
        content_type="text/html",
    )
    small = feed_server.add("/small.xml", body=feed_of(("s", "Small")), etag='"s"')
    letter = newsletter_with(("one", [urls[0], page, small]), ("two", urls[1:]))
    before = {p.pid for p in multiprocessing.active_children()}
    workers: list[int] = []
    pooled = ingest(store, letter, NOW, parse_processes=2, on_feed=_workers_seen(before, workers))
    assert workers and max(workers) >= 1  # the large documents went to worker processes
    assert not {p.pid for p in multiprocessing.active_children()} - before  # and they stopped
    assert [(f.url, f.status, f.added, f.entries, f.error) for f in pooled.feeds] == [
        (urls[0], "ok", 120, 120, None),
        (page, "error", 0, 0, "not a feed: an HTML page, not RSS or Atom"),
        (small, "ok", 1, 1, None),
        (urls[1], "ok", 120, 120, None),
        (urls[2], "ok", 120, 120, None),
    ]
    assert all(f.parsed for f in pooled.feeds if f.status == "ok")


def test_when_a_parsing_worker_is_killed_the_run_parses_the_rest_in_place(store, feed_server):
    import multiprocessing
    import os
    import signal

    def big(n: int) -> bytes:
        return feed_of(*((f"k{n}e{e}", f"Story {e} " + "word " * 60) for e in range(120)))

    urls = [feed_server.add(f"/big{n}.xml", body=big(n)) for n in range(4)]
    before = {p.pid for p in multiprocessing.active_children()}

    def kill_the_workers(_feed) -> None:
        for process in multiprocessing.active_children():
            if process.pid not in before:
                os.kill(process.pid, signal.SIGKILL)

    report = ingest(
        store,
        newsletter_with(("news", urls)),
        NOW,
        concurrency=1,
        parse_processes=2,
        on_feed=kill_the_workers,
    )
    assert [(f.status, f.added, f.error) for f in report.feeds] == [("ok", 120, None)] * 4


def test_a_run_of_small_documents_or_of_304s_starts_no_worker_process(store, feed_server):
    import multiprocessing

    urls = [
        feed_server.add(f"/f{n}.xml", body=feed_of((f"a{n}", "A")), etag=f'"{n}"') for n in range(3)
    ]
    letter = newsletter_with(("news", urls))
    before = {p.pid for p in multiprocessing.active_children()}
    workers: list[int] = []
    first = ingest(store, letter, NOW, parse_processes=2, on_feed=_workers_seen(before, workers))
    assert first.parses == 3
    # Every document is large to this run: still, a 304 is parsed nowhere.
    again = ingest(
        store,
        letter,
        NOW + timedelta(hours=1),
        parse_processes=2,
        pool_bytes=0,
        on_feed=_workers_seen(before, workers),
    )
    assert [f.status for f in again.feeds] == ["not-modified"] * 3
    assert workers == [0] * 6


def test_a_changed_entry_updates_its_article_and_is_not_mailed_again(store, feed_server):
    url = feed_server.add("/feed.xml", body=feed_of(("a", "Alpha"), ("b", "Beta")))
    letter = newsletter_with(("news", [url]))
    store.ensure_lists([("daily", "Daily")])
    ctx = pipeline.Context(settings=None, newsletter=letter, store=store)
    ingest(store, letter, NOW)
    first = pipeline.current_edition(ctx, letter.lists[0], NOW, create=True)
    assert {a.key for s in first.sections for a in s.articles} == {"guid:a", "guid:b"}
    later = NOW + timedelta(days=1)
    feed_server.add(
        "/feed.xml", body=feed_of(("c", "Gamma"), ("b", "Beta, corrected"), ("a", "Alpha"))
    )
    report = ingest(store, letter, later)
    assert (report.added, report.updated) == (1, 1)
    stored = {a.key: a for a in store.articles()}
    assert stored["guid:b"].title == "Beta, corrected" and stored["guid:b"].first_seen_at == NOW
    second = pipeline.current_edition(ctx, letter.lists[0], later, create=True)
    assert [a.key for s in second.sections for a in s.articles] == ["guid:c"]


def test_one_feed_is_routed_to_several_sections_by_category(store, feed_server):
    url = feed_server.add(
        "/all.xml",
        body=feed_of(
            ("1", "Interceptor test", ["Missile Defense"]),
            ("2", "Drone swarm", ["Tech", "drones"]),
            ("3", "Spy satellite", ["World > Military Space"]),
            ("4", "Cooking", ["Food"]),
        ),
    )
    letter = newsletter_with(
        ("missile-defense", []),
        ("drone-space", []),
        ("military-space", []),
        categories={
            "missile-defense": ["missile defense", "ABM"],
            "drone-space": ["Drones"],
            "military-space": ["Military Space"],
        },
        routers=(RouterConfig(feeds=(url,)),),
    )
    (outcome,) = ingest(store, letter, NOW).feeds
    assert (outcome.section, outcome.added) == (ROUTED, 3)
    assert outcome.sections == {"missile-defense": 1, "drone-space": 1, "military-space": 1}
    assert outcome.warnings == ("1 entry matching no section's categories left out",)
    assert {a.key: a.section for a in store.articles()} == {
        "guid:1": "missile-defense",
        "guid:2": "drone-space",
        "guid:3": "military-space",
    }
    with_fallback = newsletter_with(
        ("missile-defense", []),
        ("misc", []),
        categories={"missile-defense": ["ABM"]},
        routers=(RouterConfig(feeds=(url,), fallback="misc"),),
    )
    ingest(store, with_fallback, NOW + timedelta(hours=1))
    assert store.articles(section="misc")[0].key == "guid:4"


def test_feed_health_counts_failures_and_flags_a_feed_failing_for_days(store, feed_server):
    url = feed_server.add("/feed.xml", body=feed_of(("a", "Alpha")))
    letter = newsletter_with(("news", [url]))
    ingest(store, letter, NOW)
    feed_server.add("/feed.xml", status=500, body=b"down", content_type="text/plain")
    for day in range(1, 5):
        ingest(store, letter, NOW + timedelta(days=day), policy=QUICK)
    (health,) = feed_health(store, letter, NOW + timedelta(days=4), failing_days=3)
    assert (health.status, health.failures, health.entries) == ("error", 4, 1)
    assert health.failing_since == NOW + timedelta(days=1)
    assert health.last_success_at == NOW and health.flagged
    assert failing_feeds(store, letter, NOW + timedelta(days=4), 3) == [
        f"feed {url} (news) failing for 3 days (4 fetches in a row): HTTP 500 Internal Server Error"
    ]
    assert failing_feeds(store, letter, NOW + timedelta(days=4), 4) == []
    assert failing_feeds(store, letter, NOW + timedelta(days=4), 3, sections=["other"]) == []
    feed_server.add("/feed.xml", body=feed_of(("a", "Alpha")))
    ingest(store, letter, NOW + timedelta(days=5))
    (healed,) = feed_health(store, letter, NOW + timedelta(days=5), failing_days=3)
    assert (healed.failures, healed.failing_since, healed.flagged) == (0, None, False)


def test_routers_in_the_newsletter_definition_are_resolved_and_checked(tmp_path):
    from digest.config import load_newsletter
    from digest.errors import ConfigError

    base = (ROOT / "digest.toml").read_text(encoding="utf-8")
    path = tmp_path / "digest.toml"
    path.write_text(
        base + '\n[[routers]]\nfeeds = ["feeds/all.xml"]\nfallback = "launch-pad"\n',
        encoding="utf-8",
    )
    (router,) = load_newsletter(path).routers
    assert router.feeds == (str(tmp_path / "feeds" / "all.xml"),)
    for extra, message in [
        ('[[routers]]\nfeeds = ["x.xml"]\nfallback = "nope"\n', "no section 'nope'"),
        ('[[routers]]\nfeeds = ["x.xml"]\n', "no section has categories"),
        (
            '[[routers]]\nfeeds = ["samples/feeds/launch-pad.xml"]\nfallback = "launch-pad"\n',
            "is also a section's feed",
        ),
    ]:
        # Paths resolve against the definition's folder, the sections' and the routers' alike.
        path.write_text(base + "\n" + extra, encoding="utf-8")
        with pytest.raises(ConfigError, match=message):
            load_newsletter(path)


def test_a_feed_redirecting_to_an_internal_address_fails_alone_and_stores_nothing(
    store, feed_server
):
    with FeedServer() as internal:
        secret = internal.add("/internal.xml", body=feed_of(("s", "Internal secret")))
        hijacked = feed_server.add("/news.xml", status=302, location=secret)
        metadata = feed_server.add(
            "/sports.xml", status=307, location="http://169.254.169.254/latest/meta-data/"
        )
        fine = feed_server.add("/fine.xml", body=feed_of(("a", "Alpha")))
        letter = newsletter_with(("news", [hijacked]), ("sports", [metadata]), ("fine", [fine]))
        report = ingest(store, letter, NOW, policy=FetchPolicy(retries=0))
        assert internal.requests == []
    by_url = {f.url: f for f in report.feeds}
    assert by_url[hijacked].status == "error"
    assert by_url[hijacked].error == (
        f"redirected to {secret}, but 127.0.0.1 is a loopback address: refused (only the feeds "
        "written in digest.toml may be on loopback or private addresses)"
    )
    assert "169.254.169.254 is a link-local address: refused" in by_url[metadata].error
    assert by_url[fine].status == "ok"
    assert [a.title for a in store.articles()] == ["Alpha"]
    assert store.feed(hijacked).last_status == "error"


def dated_rss(count: int) -> bytes:
    """``count`` items, item n published n minutes after 2026-11-20 00:00, oldest first."""
    start = datetime(2026, 11, 20, tzinfo=UTC)
    items = "".join(
        f"<item><title>Story {n}</title><guid>g{n}</guid><link>https://e.org/{n}</link>"
        f"<pubDate>{(start + timedelta(minutes=n)).strftime('%a, %d %b %Y %H:%M:%S GMT')}"
        "</pubDate></item>"
        for n in range(count)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://e.org/</link>{items}</channel></rss>"
    ).encode()


def test_a_feed_is_cut_to_its_newest_thousand_entries_and_reported_truncated(store, feed_server):
    url = feed_server.add("/big.xml", body=dated_rss(1200))
    (outcome,) = ingest(store, newsletter_with(("news", [url])), NOW).feeds
    assert (outcome.status, outcome.added, outcome.truncated) == ("ok", 1000, 200)
    assert (
        "truncated: the feed has 1200 entries, the newest 1000 were read (DIGEST_FETCH_MAX_ENTRIES)"
    ) in outcome.warnings
    titles = {a.title for a in store.articles(limit=2000)}
    assert "Story 1199" in titles and "Story 200" in titles and "Story 199" not in titles


def test_the_entry_cap_is_a_setting(store, feed_server, monkeypatch):
    from digest.config import load_settings

    monkeypatch.setenv("DIGEST_FETCH_MAX_ENTRIES", "5")
    policy = FetchPolicy.from_settings(load_settings())
    url = feed_server.add("/feed.xml", body=dated_rss(8))
    (outcome,) = ingest(store, newsletter_with(("news", [url])), NOW, policy=policy).feeds
    assert (outcome.added, outcome.truncated) == (5, 3)
    assert {a.title for a in store.articles()} == {f"Story {n}" for n in range(3, 8)}


def test_the_new_articles_of_a_feed_are_stored_with_one_insert_statement(store, feed_server):
    from sqlalchemy import Engine, event

    url = feed_server.add("/many.xml", body=feed_of(*((f"g{n}", f"Story {n}") for n in range(40))))
    letter = newsletter_with(("news", [url]))
    inserts: list[str] = []

    def seen(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO ARTICLES"):
            inserts.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        report = ingest(store, letter, NOW)
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert report.added == 40
    assert len(inserts) == 1
