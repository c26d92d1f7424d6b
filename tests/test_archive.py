"""The public archive over real HTTP (uvicorn on a loopback port, a real database on both
engines) and as exported files: only sent editions, no reader named anywhere, conditional
GET, an Atom feed valid against RFC 4287's RELAX NG grammar and read by feedparser, the
static export, the sign-up page of one list, and the pages in headless chromium."""

from __future__ import annotations

import asyncio
import json
import mailbox
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import urljoin

import feedparser
import httpx
import pytest
from lxml import etree
from sqlalchemy import update

from digest import pipeline
from digest.audience.tokens import edition_token, make_token
from digest.models import Edition, NewSubscriber, Section
from digest.store import schema
from tests.support.cli import run, sample_settings, set_settings
from tests.support.newsletters import two_list_config
from tests.support.values import DATA, ROOT, SECRET_BYTES
from tests.support.web import Served, serving

ATOM_SCHEMA = DATA / "atom" / "atom.rng"


@pytest.fixture
def archive_site(tmp_path, db_url) -> Iterator[Served]:
    with serving(tmp_path, db_url) as served:
        pipeline.fetch(served.ctx, datetime.now(UTC))
        yield served


def publish(ctx: pipeline.Context, key: str, status: str = "sending") -> None:
    """A frozen edition of the daily list for ``key`` (the stored articles, headline first
    rotated by the day), in ``status``."""
    articles = ctx.store.articles(since=datetime(2000, 1, 1, tzinfo=UTC))
    shift = int(key[-2:]) % len(articles)
    articles = articles[shift:] + articles[:shift]
    by_section: dict[str, list] = {}
    for article in articles:
        by_section.setdefault(article.section, []).append(article)
    titles = {s.slug: s.title for s in ctx.newsletter.sections}
    sections = tuple(
        Section(slug, titles[slug], tuple(items[:3])) for slug, items in by_section.items()
    )
    created = datetime.fromisoformat(key).replace(hour=10, tzinfo=UTC)
    edition = ctx.store.create_edition(Edition("daily", key, created, sections))
    with ctx.store.engine.begin() as conn:
        conn.execute(
            update(schema.editions).where(schema.editions.c.id == edition.id).values(status=status)
        )


def hrefs(html: str, base: str) -> list[str]:
    return [urljoin(base, h) for h in re.findall(r'href="([^"]+)"', html)]


def crawl(served: Served) -> dict[str, httpx.Response]:
    """Every archive page and feed reachable from /archive/, by URL."""
    seen: dict[str, httpx.Response] = {}
    todo = [f"{served.url}/archive/"]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        answer = served.http.get(url)
        assert answer.status_code == 200, url
        seen[url] = answer
        todo += [
            h
            for h in hrefs(answer.text, url)
            if h.startswith(f"{served.url}/archive/") and h not in seen
        ]
    return seen


# -- only what was sent, and nobody in it -------------------------------------------------


def test_after_a_send_to_200_readers_no_archive_page_or_feed_names_anyone(archive_site, tmp_path):
    people = [
        NewSubscriber(
            email=f"reader{i:03d}@example.org",
            name=f"Personne Numero{i:03d}",
            lists=("daily",),
            sections=frozenset({"launch-pad", "drone-space"}) if i % 3 == 0 else None,
        )
        for i in range(200)
    ]
    archive_site.ctx.store.add_subscribers(people, datetime.now(UTC))
    report = asyncio.run(pipeline.send(archive_site.ctx, "daily"))
    assert report.sent == 200
    mails = [
        message_from_bytes(m.as_bytes(), policy=policy.default)
        for m in mailbox.Maildir(tmp_path / "outbox", create=False)
    ]
    assert len(mails) == 200
    personal = set()
    for person in people:
        sid = archive_site.ctx.store.subscriber(person.email).id
        personal |= {person.email, person.name}
        personal |= {
            make_token(SECRET_BYTES, sid, "daily", p)
            for p in ("unsubscribe", "preferences", "view")
        }
    for mail in mails:  # what each reader's own copy holds that is theirs alone
        personal |= set(re.findall(r"/[upc]/([A-Za-z0-9_.~-]{16,})", mail.as_string()))
        personal.add(str(mail["To"]))
    personal.add(edition_token(SECRET_BYTES, "daily", report.edition))
    served = crawl(archive_site)
    kinds = {answer.headers["content-type"].split(";")[0] for answer in served.values()}
    assert kinds == {"text/html", "application/atom+xml"}
    edition_url = f"{archive_site.url}/archive/daily/{report.edition}"
    assert edition_url in served and f"{archive_site.url}/archive/daily.atom" in served
    page = served[edition_url].text
    assert "Launch Pad" in page and "Military Space" in page  # the whole edition, for no one
    assert f'href="{archive_site.url}/subscribe?list=daily"' in page
    exported = tmp_path / "site"
    pipeline.build_archive(archive_site.ctx, exported)
    files = {p: p.read_text(encoding="utf-8") for p in exported.rglob("*") if p.is_file()}
    assert len(files) == len(served)
    for where, text in [*((u, a.text) for u, a in served.items()), *files.items()]:
        for value in personal:
            assert value not in text, f"{where} holds {value!r}"
        for link in ("/u/", "/p/", "/c/", "/e/", "__digest_"):
            assert link not in text, f"{where} holds a personal link {link!r}"


def test_only_editions_whose_sending_started_are_public(archive_site):
    publish(archive_site.ctx, "2026-11-20", "sending")
    publish(archive_site.ctx, "2026-11-21", "complete")
    publish(archive_site.ctx, "2026-11-22", "open")  # frozen, its ledger not yet filled
    publish(archive_site.ctx, "2026-11-23", "draft")  # any other state stays out too
    index = archive_site.http.get("/archive/daily/").text
    feed = archive_site.http.get("/archive/daily.atom").text
    for key, public in (
        ("2026-11-20", True),
        ("2026-11-21", True),
        ("2026-11-22", False),
        ("2026-11-23", False),
    ):
        page = archive_site.http.get(f"/archive/daily/{key}")
        assert page.status_code == (200 if public else 404), key
        assert (f"/archive/daily/{key}" in index) is public, key
        assert (f"/archive/daily/{key}" in feed) is public, key
    assert "2 editions" in archive_site.http.get("/archive/").text
    assert archive_site.http.get("/archive/nosuchlist/").status_code == 404
    assert archive_site.http.get("/archive/daily/2026-11-20.html").status_code == 404


def test_index_pages_list_editions_newest_first_a_page_at_a_time(archive_site):
    keys = [(datetime(2026, 10, 1) + timedelta(days=n)).date().isoformat() for n in range(30)]
    for key in keys:
        publish(archive_site.ctx, key)
    first = archive_site.http.get("/archive/daily/")
    shown = re.findall(r'href="[^"]*/archive/daily/(\d{4}-\d\d-\d\d)"', first.text)
    assert shown == sorted(keys, reverse=True)[:25]
    assert f'rel="next" href="{archive_site.url}/archive/daily/page/2"' in first.text
    second = archive_site.http.get("/archive/daily/page/2")
    shown = re.findall(r'href="[^"]*/archive/daily/(\d{4}-\d\d-\d\d)"', second.text)
    assert shown == sorted(keys, reverse=True)[25:]
    assert f'rel="prev" href="{archive_site.url}/archive/daily/"' in second.text
    assert 'rel="next"' not in second.text
    assert archive_site.http.get("/archive/daily/page/3").status_code == 404
    assert archive_site.http.get("/archive/daily/page/0").status_code == 404
    # Every archive page announces the list's feed and links to the list's sign-up page.
    for path in (
        "/archive/",
        "/archive/daily/",
        "/archive/daily/page/2",
        f"/archive/daily/{keys[0]}",
    ):
        html = archive_site.http.get(path).text
        assert re.search(
            rf'<link rel="alternate" type="application/atom\+xml" title="[^"]+" '
            rf'href="{re.escape(archive_site.url)}/archive/daily.atom">',
            html,
        ), path
        assert f'href="{archive_site.url}/subscribe?list=daily"' in html, path


# -- conditional GET and caching ------------------------------------------------------------


def test_archive_pages_answer_conditional_gets_and_only_they_may_be_cached(archive_site):
    publish(archive_site.ctx, "2026-11-20")
    publish(archive_site.ctx, "2026-11-21")
    for path, cache in (
        ("/archive/daily/2026-11-20", "public, max-age=604800"),
        ("/archive/daily/", "public, max-age=300"),
        ("/archive/daily.atom", "public, max-age=300"),
        ("/archive/", "public, max-age=300"),
    ):
        first = archive_site.http.get(path)
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        assert first.headers["cache-control"] == cache, path
        again = archive_site.http.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"", path
        assert again.headers["etag"] == etag
        since = archive_site.http.get(path, headers={"If-Modified-Since": modified})
        assert since.status_code == 304, path
        # An older date, or another ETag (which decides over the date), gets the page.
        older = archive_site.http.get(
            path, headers={"If-Modified-Since": "Sun, 01 Nov 2026 00:00:00 GMT"}
        )
        assert older.status_code == 200 and older.content == first.content, path
        other = archive_site.http.get(
            path, headers={"If-None-Match": '"other"', "If-Modified-Since": modified}
        )
        assert other.status_code == 200, path
    edition = archive_site.http.get("/archive/daily/2026-11-20")
    assert edition.headers["last-modified"] == "Fri, 20 Nov 2026 10:00:00 GMT"
    assert (
        archive_site.http.get("/archive/daily/").headers["last-modified"]
        == "Sat, 21 Nov 2026 10:00:00 GMT"
    )
    # A new edition changes the index's ETag, so a cache holding the old one gets the new.
    etag = archive_site.http.get("/archive/daily/").headers["etag"]
    publish(archive_site.ctx, "2026-11-22")
    assert (
        archive_site.http.get("/archive/daily/", headers={"If-None-Match": etag}).status_code == 200
    )
    # Pages holding a token are still never cached.
    archive_site.ctx.store.add_subscribers(
        [NewSubscriber("c@example.com", lists=("daily",))], datetime.now(UTC)
    )
    sid = archive_site.ctx.store.subscriber("c@example.com").id
    token_page = archive_site.http.get(
        f"/u/{make_token(SECRET_BYTES, sid, 'daily', 'unsubscribe')}"
    )
    assert token_page.status_code == 200 and token_page.headers["cache-control"] == "no-store"
    assert archive_site.http.get("/subscribe").headers["cache-control"] == "no-store"


def test_head_and_get_of_the_archive_change_nothing(archive_site):
    publish(archive_site.ctx, "2026-11-20")
    before = _rows(archive_site)
    for path in (
        "/archive/",
        "/archive/daily/",
        "/archive/daily/2026-11-20",
        "/archive/daily.atom",
    ):
        head = archive_site.http.head(path)
        assert head.status_code == 200 and head.content == b""
        assert archive_site.http.post(path).status_code == 405
    assert _rows(archive_site) == before


def _rows(served: Served) -> dict[str, list]:
    from sqlalchemy import select

    with served.ctx.store.engine.connect() as conn:
        return {
            t.name: sorted(map(repr, conn.execute(select(t)).all()))
            for t in schema.metadata.sorted_tables
        }


# -- the feed ------------------------------------------------------------------------------


def test_the_feed_is_valid_atom_read_by_feedparser_with_stable_ids(archive_site, tmp_path):
    for key in ("2026-11-19", "2026-11-20", "2026-11-21"):
        publish(archive_site.ctx, key)
    body = archive_site.http.get("/archive/daily.atom").content
    schema_ = etree.RelaxNG(etree.parse(str(ATOM_SCHEMA)))
    document = etree.fromstring(body)
    assert schema_.validate(document), schema_.error_log
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert [e.link for e in parsed.entries] == [
        f"{archive_site.url}/archive/daily/{k}" for k in ("2026-11-21", "2026-11-20", "2026-11-19")
    ]
    assert [e.id for e in parsed.entries] == [e.link for e in parsed.entries]
    entry = parsed.entries[0]
    assert entry.content[0].type == "text/html"
    assert "Launch Pad" in entry.content[0].value and "__digest_" not in entry.content[0].value
    assert entry.title.startswith("Orbital Dispatch Daily, November 21, 2026: ")
    assert parsed.feed.links[0].href == f"{archive_site.url}/archive/daily.atom"
    # Rebuilt (served again, exported twice): the same document, so the same ids.
    assert archive_site.http.get("/archive/daily.atom").content == body
    for _ in range(2):
        pipeline.build_archive(archive_site.ctx, tmp_path / "site")
        assert (tmp_path / "site" / "archive" / "daily.atom").read_bytes() == body


def test_the_grammar_refuses_a_feed_that_breaks_it():
    schema_ = etree.RelaxNG(etree.parse(str(ATOM_SCHEMA)))
    no_id = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        b"<updated>2026-11-26T00:00:00Z</updated></feed>"
    )
    assert not schema_.validate(etree.fromstring(no_id))
    bad_date = no_id.replace(b"<title>", b"<id>urn:x</id><title>").replace(b"T00:00:00Z", b"")
    assert not schema_.validate(etree.fromstring(bad_date))


def test_an_empty_archive_still_has_a_valid_feed(archive_site):
    body = archive_site.http.get("/archive/daily.atom").content
    assert etree.RelaxNG(etree.parse(str(ATOM_SCHEMA))).validate(etree.fromstring(body))
    assert not feedparser.parse(body).bozo
    assert "No edition has been sent yet" in archive_site.http.get("/archive/daily/").text


# -- the static export ---------------------------------------------------------------------


def test_the_export_writes_the_served_bytes_and_only_new_editions(archive_site, tmp_path):
    publish(archive_site.ctx, "2026-11-20")
    publish(archive_site.ctx, "2026-11-21")
    out = tmp_path / "site"
    done = pipeline.build_archive(archive_site.ctx, out)
    assert (done.editions_written, done.editions_skipped) == (2, 0)
    for path, name in (
        ("/archive/", "archive/index.html"),
        ("/archive/daily/", "archive/daily/index.html"),
        ("/archive/daily/2026-11-20", "archive/daily/2026-11-20.html"),
        ("/archive/daily.atom", "archive/daily.atom"),
    ):
        assert (out / name).read_bytes() == archive_site.http.get(path).content, name
    # Links are DIGEST_BASE_URL's: the export is that site's document root.
    links = hrefs((out / "archive/daily/index.html").read_text(), archive_site.url)
    assert f"{archive_site.url}/archive/daily/2026-11-21" in links
    kept = out / "archive/daily/2026-11-20.html"
    kept.write_text("kept as it was")
    publish(archive_site.ctx, "2026-11-22")
    done = pipeline.build_archive(archive_site.ctx, out)
    assert (done.editions_written, done.editions_skipped) == (1, 2)
    assert kept.read_text() == "kept as it was"  # an exported edition is not rendered again
    assert "2026-11-22" in (out / "archive/daily/index.html").read_text()
    done = pipeline.build_archive(archive_site.ctx, out)
    assert (done.editions_written, done.pages_written) == (0, 0)
    assert done.pages_unchanged == 3
    done = pipeline.build_archive(archive_site.ctx, out, rewrite=True)
    assert done.editions_written == 3 and kept.read_text() != "kept as it was"


def test_digest_archive_build_says_what_it_wrote(monkeypatch, tmp_path, db_url):
    set_settings(monkeypatch, sample_settings(db_url, DIGEST_OUTBOX=str(tmp_path / "outbox")))
    run("fetch")
    ctx = pipeline.Context.open()
    try:
        publish(ctx, "2026-11-20")
    finally:
        ctx.close()
    first = run("archive", "build", "--out", str(tmp_path / "site"))
    assert "editions: 1 written, 0 skipped" in first.output
    again = run("archive", "build", "--out", str(tmp_path / "site"), "--list", "daily")
    assert "editions: 0 written, 1 skipped" in again.output
    as_json = run("archive", "build", "--out", str(tmp_path / "site"), "--json")
    assert json.loads(as_json.output) == {
        "editions_written": 0,
        "editions_skipped": 1,
        "pages_written": 0,
        "pages_unchanged": 3,
    }
    page = (tmp_path / "site/archive/daily/2026-11-20.html").read_text()
    assert 'href="https://news.example.com/subscribe?list=daily"' in page
    missing = run("archive", "build", "--out", str(tmp_path / "site"), "--list", "nope", code=2)
    assert "no list named 'nope'" in missing.stderr
    (tmp_path / "blocked").write_text("a file, not a folder")
    blocked = run("archive", "build", "--out", str(tmp_path / "blocked"), code=1)
    assert blocked.stderr.startswith("error: cannot write ")
    assert len(blocked.stderr.strip().splitlines()) == 1


# -- a list without an archive, and the sign-up page of one list ---------------------------


def weekly_without_archive(tmp_path: Path) -> Path:
    """The two-list newsletter, its weekly list titled apart, on two sections, no archive."""
    path = two_list_config(tmp_path)
    text = path.read_text()
    at = text.rindex('title = "Orbital Dispatch Daily"')
    text = text[:at] + 'title = "Orbital Dispatch Weekly"' + text[at + 32 :]
    path.write_text(text + '\nsections = ["launch-pad", "drone-space"]\narchive = false\n')
    return path


def test_a_list_with_archive_false_has_no_pages_and_no_export(tmp_path, db_url):
    with serving(tmp_path, db_url, weekly_without_archive(tmp_path)) as served:
        assert served.http.get("/archive/weekly/").status_code == 404
        assert served.http.get("/archive/weekly.atom").status_code == 404
        root = served.http.get("/archive/").text
        assert "/archive/daily/" in root and "weekly" not in root
        with pytest.raises(Exception, match="has no archive"):
            pipeline.build_archive(served.ctx, tmp_path / "site", "weekly")


def test_the_sign_up_page_of_one_list_offers_that_list_and_its_sections_only(tmp_path, db_url):
    with serving(tmp_path, db_url, weekly_without_archive(tmp_path)) as served:
        weekly = served.http.get("/subscribe?list=weekly").text
        boxes = re.findall(r'name="section" value="([^"]+)"', weekly)
        assert boxes == ["drone-space", "launch-pad"] or sorted(boxes) == [
            "drone-space",
            "launch-pad",
        ]
        assert '<input type="hidden" name="list" value="weekly">' in weekly
        assert "<select" not in weekly and "Orbital Dispatch Daily" not in weekly
        assert 'action="/subscribe?list=weekly"' in weekly
        # Without a list the reader still chooses one.
        assert "<select" in served.http.get("/subscribe").text
        # A sign-up from that page asks for that list.
        answer = served.http.post(
            "/subscribe?list=weekly",
            data={"email": "w@example.com", "list": "weekly", "section": "launch-pad"},
        )
        assert answer.status_code == 200 and "Check your inbox" in answer.text


# -- in a browser --------------------------------------------------------------------------

FITS = """(() => ({inner: innerWidth,
  scroll: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)}))()"""


def test_the_archive_and_the_feeds_content_fit_a_375_px_phone(archive_site, browser, tmp_path):
    publish(archive_site.ctx, "2026-11-20")
    publish(archive_site.ctx, "2026-11-21")
    entry = feedparser.parse(archive_site.http.get("/archive/daily.atom").content).entries[0]
    reader = tmp_path / "feed-entry.html"  # the entry's content as a feed reader shows it
    reader.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width, initial-scale=1"></head><body>{entry.content[0].value}'
        "</body></html>",
        encoding="utf-8",
    )
    for target in (
        f"{archive_site.url}/archive/",
        f"{archive_site.url}/archive/daily/",
        f"{archive_site.url}/archive/daily/2026-11-21",
        reader,
    ):
        page = browser.page(target, 375)
        try:
            found = page.evaluate(FITS)
            text = page.evaluate("document.body.innerText")
        finally:
            page.close()
        assert found["inner"] == 375, target
        assert found["scroll"] <= 375, f"{target}: {found['scroll']} px wide at 375 px"
        assert "Launch Pad" in text or "Orbital Dispatch Daily" in text, target


def test_the_readme_sign_up_form_opens_its_lists_page_with_the_address_filled_in(tmp_path, db_url):
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```html\n(<form .*?</form>)\n```", readme, re.S).group(1)
    form = etree.fromstring(block, etree.HTMLParser()).find(".//form")
    assert form.get("method") == "get"
    fields = {i.get("name"): i.get("value") for i in form.iter("input")}
    fields["email"] = "reader@example.com"
    with serving(tmp_path, db_url, weekly_without_archive(tmp_path)) as served:
        action = form.get("action").replace("https://news.example.com", served.url)
        page = served.http.get(action, params=fields)
    assert page.status_code == 200
    assert 'value="reader@example.com"' in page.text
    assert '<input type="hidden" name="list" value="daily">' in page.text
    assert "<select" not in page.text and "Orbital Dispatch Weekly" not in page.text


def test_a_lists_archive_without_its_slash_redirects_to_it(archive_site):
    answer = archive_site.http.get("/archive/daily", follow_redirects=False)
    assert answer.status_code in (307, 308)
    assert answer.headers["location"].endswith("/archive/daily/")


def test_an_address_in_the_sign_up_pages_query_never_reaches_the_access_log():
    import logging

    from digest.web.logs import RedactTokens

    # As uvicorn's access logger writes a request: the path with its query is an argument.
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:5000",
            "GET",
            "/subscribe?list=daily&email=ana.reader%40example.org&name=Ana+Reader",
            "1.1",
            200,
        ),
        None,
    )
    RedactTokens().filter(record)
    line = record.getMessage()
    assert "ana.reader" not in line and "Ana" not in line
    assert line == '127.0.0.1:5000 - "GET /subscribe?list=daily&email=***&name=*** HTTP/1.1" 200'


def test_kept_copies_are_rendered_once_bounded_and_the_same_bytes(archive_site):
    ctx = archive_site.ctx
    for key in ("2026-11-19", "2026-11-20", "2026-11-21"):
        publish(ctx, key)
    copies = pipeline.ArchiveCopies(limit=2)
    feed = pipeline.archive_feed(ctx, "daily", copies)
    assert feed.body == pipeline.archive_feed(ctx, "daily").body
    assert (len(copies), copies.hits) == (2, 0)  # the newest first: 2026-11-21 left
    page = pipeline.archive_edition(ctx, "daily", "2026-11-19", copies)
    assert copies.hits == 1
    assert page.body == pipeline.archive_edition(ctx, "daily", "2026-11-19").body
    assert pipeline.archive_feed(ctx, "daily", copies).body == feed.body
    assert len(copies) == 2


def test_an_edition_without_a_page_never_leaves_the_export_nor_breaks_the_feed(
    archive_site, tmp_path
):
    publish(archive_site.ctx, "2026-11-20")
    good = archive_site.ctx.store.edition("daily", "2026-11-20")
    # A key that is no file name, and one the email template cannot date.
    for key in ("../../escaped", "2026-12"):
        odd = archive_site.ctx.store.create_edition(
            Edition("daily", key, good.created_at, good.sections)
        )
        with archive_site.ctx.store.engine.begin() as conn:
            conn.execute(
                update(schema.editions)
                .where(schema.editions.c.id == odd.id)
                .values(status="complete")
            )
    assert archive_site.http.get("/archive/daily/2026-12").status_code == 404
    out = tmp_path / "deep" / "site"
    done = pipeline.build_archive(archive_site.ctx, out)
    assert done.editions_written == 1
    assert not list(tmp_path.rglob("escaped*"))
    assert "escaped" not in archive_site.http.get("/archive/daily/").text
    feed = feedparser.parse(archive_site.http.get("/archive/daily.atom").content)
    assert [e.link.rsplit("/", 1)[1] for e in feed.entries] == ["2026-11-20"]
