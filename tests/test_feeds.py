"""Fetching (a real HTTP server, real files) and parsing (the sample feeds, real-world feeds)."""

from __future__ import annotations

import gzip
import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.errors import FeedError
from digest.feeds import (
    FetchPolicy,
    article_key,
    fetch,
    parse,
    plain_text,
    shorten,
    split_dateline,
)
from tests.support.httpd import NO_RETRY, Route, closed_port_url
from tests.support.values import DATA, NOW, SAMPLE_COUNTS, SAMPLES

QUICK_RETRY = FetchPolicy(retries=2, backoff=0.01)
FEED_DATA = DATA / "feeds"


def parse_file(path: Path, section: str = "news", source: str | None = None):
    return parse(path.read_bytes(), source=source or str(path), section=section, now=NOW)


def rss(items: str, channel_link: str = "https://example.org/news/") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        f'xmlns:media="http://search.yahoo.com/mrss/"><channel><title>T</title>'
        f"<link>{channel_link}</link>{items}</channel></rss>"
    ).encode()


# -- the sample feeds -------------------------------------------------------------------------


@pytest.mark.parametrize("name,count", SAMPLE_COUNTS.items())
def test_sample_feed_parses_into_clean_articles(name, count):
    feed = parse_file(SAMPLES / name, section="space")
    assert len(feed.articles) == count
    assert feed.warnings == ()
    assert feed.title.startswith("Orbital Dispatch - ")
    assert len({a.key for a in feed.articles}) == count
    for a in feed.articles:
        assert a.section == "space"
        assert a.title and "<" not in a.title and "\n" not in a.title
        assert a.url.startswith("https://news.orbital-dispatch.example/")
        assert re.fullmatch(r"[A-Z][\w .,]+ \([A-Z]{3}\) Nov 2\d, 2026", a.dateline)
        assert a.summary and not a.summary.startswith(a.dateline)
        for bad in ("<", ">", "script", "onclick", "javascript", "\n", "&amp;"):
            assert bad not in a.summary
        assert a.image is None or a.image.startswith("https://images.orbital-dispatch.example/")
        assert a.byline and "@" not in a.byline
        assert datetime(2026, 11, 20, tzinfo=UTC) <= a.published_at < NOW
        assert a.first_seen_at is None


def test_sample_feeds_are_the_newsletter_sections(newsletter):
    for section in newsletter.sections:
        (feed,) = section.feeds
        assert Path(feed).parent == SAMPLES and Path(feed).stem == section.slug


def test_sample_images_come_from_media_content_enclosures_and_img_tags():
    def images(name):
        return [a.image for a in parse_file(SAMPLES / name).articles]

    # media:content on items 1, 3, 5; image enclosures on 1, 2, 5; an <img> in Atom content.
    assert [bool(i) for i in images("internet-space.xml")] == [1, 0, 1, 0, 1, 0, 0]
    assert [bool(i) for i in images("launch-pad.xml")] == [1, 1, 0, 0, 1, 0, 0]
    assert images("drone-space.atom")[2] == (
        "https://images.orbital-dispatch.example/2026/11/stratolume-landing.jpg"
    )
    assert images("military-space.xml") == [None] * 7


def test_script_and_event_handler_in_a_sample_are_stripped():
    raw = (SAMPLES / "launch-pad.xml").read_text()
    assert "<script>" in raw and "onclick=" in raw  # the sample does carry them
    lunar = next(a for a in parse_file(SAMPLES / "launch-pad.xml").articles if "lunar" in a.title)
    assert lunar.summary == (
        "A two-week launch window for a commercial lunar cargo lander opens on Friday. "
        "The lander carries eleven payloads, including a seismometer and a small rover built "
        "by university students. Mission timeline."
    )


def test_sample_details_survive_parsing():
    first = parse_file(SAMPLES / "launch-pad.xml").articles[0]
    assert first.dateline == "Cape Canaveral, Fla. (ODW) Nov 25, 2026"
    assert first.summary.startswith("Meridian Launch fired all nine")
    assert first.published_at == datetime(2026, 11, 25, 17, 15, tzinfo=UTC)
    rdf = parse_file(SAMPLES / "missile-defense.rdf").articles
    assert rdf[1].published_at == datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # +09:00
    assert rdf[1].byline == "Kenji Arai"
    assert parse_file(SAMPLES / "internet-space.xml").articles[1].byline == "Marc Delorme"


# -- text ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        (
            "Seoul (AFP) Nov 3, 2026 - North Korea fired",
            ("Seoul (AFP) Nov 3, 2026", "North Korea fired"),
        ),
        (
            "Cape Canaveral, Fla. (ODW) Nov 25, 2026 \u2013 The rocket",
            ("Cape Canaveral, Fla. (ODW) Nov 25, 2026", "The rocket"),
        ),
        (
            "Rio de Janeiro (MPA) November 21, 2026 \u2014 Text",
            ("Rio de Janeiro (MPA) November 21, 2026", "Text"),
        ),
        ("Washington DC (SPX) Nov 24, 2026 - ", ("Washington DC (SPX) Nov 24, 2026", "")),
        (
            "Washington DC (SPX) Nov 24, 2026 The text",
            (None, "Washington DC (SPX) Nov 24, 2026 The text"),
        ),
        ("The rocket (ODW) Nov 3, 2026 - flew", (None, "The rocket (ODW) Nov 3, 2026 - flew")),
        ("Officials said on Nov 3, 2026 - x", (None, "Officials said on Nov 3, 2026 - x")),
        ("NASA (AFP) said on Friday - x", (None, "NASA (AFP) said on Friday - x")),
    ],
)
def test_split_dateline_is_conservative(text, expected):
    assert split_dateline(text) == expected


def test_plain_text_removes_all_markup_and_keeps_the_words():
    html = (
        "<p>AT&amp;T &lt;b&gt; &#8220;quoted&#8221;</p><p>Second\r\n para<br>line</p>"
        '<script>alert(1)</script><style>p{}</style><a href="x" onclick="y()">link</a>'
    )
    assert plain_text(html) == "AT&T <b> \u201cquoted\u201d Second para line link"
    assert plain_text("a < b and <b> as text", is_html=False) == "a < b and <b> as text"


def test_shorten_cuts_at_a_word_boundary():
    text = " ".join(["word"] * 200)
    short = shorten(text, 400)
    assert len(short) <= 401 and short.endswith("word\u2026")
    assert shorten("short", 400) == "short"


def test_long_summaries_and_multiline_titles_are_cleaned():
    body = "<p>" + "Satellites relay data. " * 60 + "</p>"
    feed = parse(
        rss(
            f"<item><title>Line one\r\nline  two</title><link>https://e.org/1</link>"
            f"<description><![CDATA[{body}]]></description></item>"
        ),
        source="f.xml",
        section="s",
        now=NOW,
    )
    (article,) = feed.articles
    assert article.title == "Line one line two"
    assert len(article.summary) <= 401 and article.summary.endswith("\u2026")
    assert article.dateline is None  # no dateline in the feed, none invented


# -- links, images, dates, identity -------------------------------------------------------------


def test_relative_links_and_images_resolve_and_only_http_urls_are_kept():
    items = (
        "<item><title>A</title><link>/a/1</link><guid>a1</guid>"
        '<description><![CDATA[<img src="/img/a.jpg"> text]]></description></item>'
        "<item><title>B</title><link>https://e.org/b</link>"
        '<media:content url="javascript:alert(1)" medium="image"/>'
        '<description><![CDATA[<img src="data:image/png;base64,AAAA"> text]]></description></item>'
        "<item><title>C</title><link>javascript:alert(1)</link></item>"
        "<item><title>D</title><link>https://e.org/d</link>"
        '<media:thumbnail url="https://img.e.org/d.png"/></item>'
    )
    feed = parse(rss(items), source="f.xml", section="s", now=NOW)
    assert [(a.url, a.image) for a in feed.articles] == [
        ("https://example.org/a/1", "https://example.org/img/a.jpg"),
        ("https://e.org/b", None),
        ("https://e.org/d", "https://img.e.org/d.png"),
    ]
    assert feed.warnings == ("1 entry without a link skipped",)


def test_relative_links_of_a_real_feed_resolve_against_the_url_it_came_from():
    path = FEED_DATA / "node-feedparser" / "rss-with-relative-urls.xml"
    local = parse_file(path)
    assert local.articles == () and local.warnings == ("2 entries without a link skipped",)
    remote = parse_file(path, source="https://www.arcgames.com/en/games/neverwinter/news/rss")
    assert [a.url.split("/detail/")[0] for a in remote.articles] == [
        "https://www.arcgames.com/en/games/neverwinter/news"
    ] * 2


def test_future_dates_are_clamped_and_absent_dates_stay_absent():
    items = (
        "<item><title>Future</title><link>https://e.org/f</link>"
        "<pubDate>Mon, 01 Jan 2035 00:00:00 GMT</pubDate></item>"
        "<item><title>Undated</title><link>https://e.org/u</link></item>"
    )
    feed = parse(rss(items), source="f.xml", section="s", now=NOW)
    assert [a.published_at for a in feed.articles] == [NOW, None]
    assert feed.warnings == ("1 entry dated in the future (dated now instead)",)


def test_entries_repeating_an_identity_are_kept_once():
    item = "<item><title>A</title><link>https://e.org/a</link><guid>x</guid></item>"
    feed = parse(rss(item * 3), source="f.xml", section="s", now=NOW)
    assert len(feed.articles) == 1
    assert feed.warnings == ("2 entries repeating an earlier entry's identity skipped",)


def test_article_key_prefers_guid_then_canonical_link_then_content_hash():
    assert article_key(" abc ", "https://e.org/1", "T", "S") == "guid:abc"
    tracked = "https://Example.ORG:443/a/b?utm_source=rss&id=3&fbclid=x&utm_medium=mail&z#frag"
    assert article_key("", tracked, "T", "S") == "url:https://example.org/a/b?id=3&z"
    assert article_key(None, "https://example.org/a/b?id=3&z", "T", "S") == article_key(
        "  ", tracked, "Other", "Other"
    )
    assert article_key(None, "http://e.org", "T", "S") == "url:http://e.org/"
    hashed = "sha256:" + hashlib.sha256(b"Title\nSummary").hexdigest()
    assert article_key(None, None, "Title", "Summary") == hashed
    assert article_key(None, "", "Title", "Summary") == hashed
    assert article_key(None, None, "Title", "Other summary") != hashed


def test_keys_do_not_depend_on_where_the_feed_was_fetched_from():
    items = (
        "<item><title>A</title><guid>abc-1</guid><link>/a</link></item>"
        "<item><title>B</title><link>/b?utm_source=x</link></item>"
    )
    here = parse(rss(items), source="https://a.example/feed", section="s", now=NOW).articles
    there = parse(rss(items), source="https://b.example/rss", section="s", now=NOW).articles
    assert [a.key for a in here] == ["guid:abc-1", "url:https://a.example/b"]
    assert [a.key for a in there] == ["guid:abc-1", "url:https://b.example/b"]
    assert here[0].url == "https://a.example/a"


def test_urls_are_made_safe_to_put_in_an_email():
    items = '<item><title>A</title><link>https://b\u00fccher.example/a b"c</link></item>'
    (article,) = parse(
        rss(items.encode().decode("unicode_escape")), source="f.xml", section="s", now=NOW
    ).articles
    assert article.url == "https://xn--bcher-kva.example/a%20b%22c"


def test_keys_are_stable_across_fetches_of_a_changed_feed():
    before = parse_file(SAMPLES / "military-space.xml").articles
    edited = (
        (SAMPLES / "military-space.xml")
        .read_bytes()
        .replace(b"Allied command stands up", b"Allied command opens")
    )
    after = parse(edited, source="x", section="news", now=NOW).articles
    assert [a.key for a in before] == [a.key for a in after]
    assert before[0].title != after[0].title


# -- ill-formed and foreign documents -----------------------------------------------------------


@pytest.mark.parametrize(
    "content,reason",
    [
        ((FEED_DATA / "illformed/node-feedparser/notafeed.html").read_bytes(), "an HTML page"),
        ((FEED_DATA / "illformed/rss-parser/unrecognized.rss").read_bytes(), "an HTML page"),
        (b"", "the document is empty"),
        (b"just some text", "ill-formed XML: syntax error at line "),
        (
            b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>',
            "ill-formed XML: no element found at line 1",
        ),
    ],
)
def test_a_document_that_is_no_feed_raises_a_one_line_feed_error(content, reason):
    with pytest.raises(FeedError) as caught:
        parse(content, source="https://e.org/feed", section="s", now=NOW)
    message = str(caught.value)
    assert message.startswith(f"https://e.org/feed: not a feed: {reason}")
    assert "\n" not in message


def test_an_ill_formed_feed_with_entries_is_used_with_a_warning():
    feed = parse_file(FEED_DATA / "illformed/node-feedparser/saxerror.xml")
    assert [a.title for a in feed.articles] == ["Good Item", "Bad Item", "Item After Error"]
    assert feed.warnings == (
        "ill-formed XML (used anyway): not well-formed (invalid token) at line 15",
    )


def test_gzip_bytes_saved_as_a_feed_are_read():
    packed = gzip.compress((SAMPLES / "launch-pad.xml").read_bytes())
    assert len(parse(packed, source="f.xml", section="s", now=NOW).articles) == 7


@pytest.mark.parametrize(
    "path,count",
    [
        ("rss-parser/craigslist.rss", 25),  # RSS 1.0
        ("rss-parser/gulp-atom.atom", 10),  # Atom
        ("node-feedparser/nondefaultnamespace.atom", 1),  # Atom in a prefixed namespace
        ("node-feedparser/rss2sample.xml", 4),
    ],
)
def test_real_world_feeds_parse(path, count):
    feed = parse_file(FEED_DATA / path)
    assert len(feed.articles) == count
    assert all(a.url.startswith(("http://", "https://")) and a.title for a in feed.articles)


def test_every_corpus_file_parses_or_fails_with_a_feed_error(corpus):
    files = sorted(
        p
        for folder in ("feeds", "feeds_illformed")
        for p in (corpus / folder).rglob("*")
        if p.is_file() and p.suffix != ".md"
    )
    assert len(files) > 100
    rejected = []
    for path in files:
        try:
            feed = parse(path.read_bytes(), source=str(path), section="s", now=NOW)
        except FeedError as exc:
            assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
            rejected.append(path.relative_to(corpus).parts[0])
            continue
        assert not any("could not be read" in w for w in feed.warnings), (path, feed.warnings)
        for a in feed.articles:
            assert a.url.startswith(("http://", "https://")), path
            assert a.title and "\n" not in a.title and "\r" not in a.title, path
            assert len(a.summary) <= 401 and "\n" not in a.summary, path
            assert a.image is None or a.image.startswith(("http://", "https://")), path
            assert a.published_at is None or a.published_at <= NOW, path
    assert "feeds" not in rejected  # every real, well-formed-enough feed is read


# -- fetch ------------------------------------------------------------------------------------


def test_fetch_reads_local_paths_and_file_urls():
    path = SAMPLES / "launch-pad.xml"
    for source in (str(path), path.as_uri()):
        result = fetch(source)
        assert (result.status, result.content, result.etag) == ("ok", path.read_bytes(), None)


def test_fetch_of_a_missing_file_names_it(tmp_path):
    with pytest.raises(FeedError, match=r"^/.*/gone\.xml: no such file$"):
        fetch(str(tmp_path / "gone.xml"))
    with pytest.raises(FeedError, match="is a folder"):
        fetch(str(tmp_path))


def test_conditional_get_round_trip(feed_server):
    body = (SAMPLES / "internet-space.xml").read_bytes()
    url = feed_server.add(
        "/feed.xml", body=body, etag='"v1"', last_modified="Wed, 25 Nov 2026 16:10:00 GMT"
    )
    first = fetch(url)
    assert (first.status, first.content, first.etag) == ("ok", body, '"v1"')
    assert first.last_modified == "Wed, 25 Nov 2026 16:10:00 GMT"
    second = fetch(url, etag=first.etag, last_modified=first.last_modified)
    assert (second.status, second.content, second.etag) == ("not-modified", None, '"v1"')
    asked = feed_server.requests_to("/feed.xml")
    assert "if-none-match" not in asked[0].headers
    assert asked[1].headers["if-none-match"] == '"v1"'
    assert asked[1].headers["if-modified-since"] == "Wed, 25 Nov 2026 16:10:00 GMT"
    assert asked[0].headers["user-agent"].startswith("digest/")


def test_conditional_get_with_last_modified_only(feed_server):
    url = feed_server.add(
        "/feed.xml", body=b"<rss/>", last_modified="Tue, 24 Nov 2026 08:00:00 GMT"
    )
    assert fetch(url, last_modified="Tue, 24 Nov 2026 08:00:00 GMT").status == "not-modified"
    assert fetch(url, last_modified="Mon, 23 Nov 2026 08:00:00 GMT").status == "ok"


def test_fetch_follows_up_to_five_redirects(feed_server):
    feed_server.add("/feed.xml", body=b"<rss/>")
    feed_server.add("/r1", status=301, location="/r2")
    feed_server.add("/r2", status=302, location=feed_server.url("/feed.xml"))
    result = fetch(feed_server.url("/r1"))
    assert (result.status, result.content, result.source) == (
        "ok",
        b"<rss/>",
        feed_server.url("/r1"),
    )
    feed_server.add("/loop", status=307, location="/loop")
    with pytest.raises(FeedError, match=r"/loop: more than 5 redirects$"):
        fetch(feed_server.url("/loop"))
    assert len(feed_server.requests_to("/loop")) == 6
    feed_server.add("/ftp", status=301, location="ftp://e.org/feed")
    with pytest.raises(FeedError, match="redirected to a non-http"):
        fetch(feed_server.url("/ftp"))


@pytest.mark.parametrize(
    "status,message",
    [
        (404, "HTTP 404 Not Found"),
        (500, "HTTP 500 Internal Server Error"),
        (403, "HTTP 403 Forbidden"),
    ],
)
def test_http_errors_name_the_feed_and_the_status(feed_server, status, message):
    url = feed_server.add("/feed.xml", status=status, body=b"oops", content_type="text/plain")
    with pytest.raises(FeedError) as caught:
        fetch(url, policy=NO_RETRY)
    assert str(caught.value) == f"{url}: {message}"


def test_unreachable_server_is_a_clear_feed_error():
    url = closed_port_url()
    with pytest.raises(FeedError) as caught:
        fetch(url)
    assert str(caught.value) == f"{url}: connection refused"


def test_a_server_that_does_not_answer_times_out(feed_server):
    url = feed_server.add("/slow", Route(hang=True))
    with pytest.raises(FeedError) as caught:
        fetch(url, timeout=0.3, policy=NO_RETRY)
    assert str(caught.value) == f"{url}: timed out after 0.3 s"


def test_oversized_feeds_are_refused(feed_server, tmp_path):
    url = feed_server.add("/big", body=b"x" * 5000)
    with pytest.raises(FeedError, match=r"/big: larger than the 0\.001 MB limit$"):
        fetch(url, max_bytes=1000)
    big = tmp_path / "big.xml"
    big.write_bytes(b"x" * 5000)
    with pytest.raises(FeedError, match="larger than"):
        fetch(str(big), max_bytes=1000)


def test_unsupported_schemes_are_refused():
    with pytest.raises(FeedError, match=r"^ftp://e\.org/feed: unsupported URL scheme ftp://"):
        fetch("ftp://e.org/feed")


def test_every_ill_formed_corpus_file_is_flagged_or_refused_with_a_reason(corpus):
    files = sorted(
        p for p in (corpus / "feeds_illformed").rglob("*") if p.is_file() and p.suffix != ".md"
    )
    assert len(files) >= 25
    used = refused = 0
    for path in files:
        try:
            feed = parse(path.read_bytes(), source="f", section="s", now=NOW)
        except FeedError as exc:
            reason = str(exc).removeprefix("f: not a feed: ")
            assert reason != str(exc) and len(reason) > 10 and "\n" not in reason, path
            refused += 1
            continue
        # Used: then something says what was wrong with it.
        assert feed.warnings, path
        used += 1
    assert used and refused


# -- fetch: retries, compression, caps, content types, charsets ---------------------------------


def test_a_5xx_is_retried_with_backoff_and_a_404_is_not(feed_server):
    url = feed_server.add("/flaky.xml", body=rss(""), fail_first=2, fail_status=503)
    result = fetch(url, policy=QUICK_RETRY)
    assert (result.status, result.attempts) == ("ok", 3)
    assert result.notes[0].startswith("attempt 1: HTTP 503 Service Unavailable; retried after")
    assert len(feed_server.requests_to("/flaky.xml")) == 3
    feed_server.add("/down.xml", body=rss(""), fail_first=10, fail_status=502, retry_after="0")
    with pytest.raises(FeedError) as caught:
        fetch(feed_server.url("/down.xml"), policy=QUICK_RETRY)
    assert str(caught.value).endswith(": HTTP 502 Bad Gateway (3 attempts)")
    gone = feed_server.add("/gone.xml", status=404, body=b"no", content_type="text/plain")
    with pytest.raises(FeedError, match=r"HTTP 404 Not Found$"):
        fetch(gone, policy=QUICK_RETRY)
    assert len(feed_server.requests_to("/gone.xml")) == 1


def test_a_time_out_is_retried_then_reported(feed_server):
    url = feed_server.add("/slow", Route(hang=True))
    with pytest.raises(FeedError) as caught:
        fetch(url, policy=FetchPolicy(read_timeout=0.2, retries=1, backoff=0.01))
    assert str(caught.value) == f"{url}: timed out after 0.2 s (2 attempts)"
    assert len(feed_server.requests_to("/slow")) == 2


def test_a_body_trickling_in_is_cut_off_at_the_total_budget(feed_server):
    url = feed_server.add("/trickle.xml", body=b"<rss>" + b" " * 20_000 + b"</rss>", trickle=0.02)
    with pytest.raises(FeedError, match=r"timed out after 0\.3 s reading the body"):
        fetch(url, policy=FetchPolicy(read_timeout=0.1, retries=0))


def test_gzip_encoded_responses_are_decoded_and_the_cap_counts_decoded_bytes(feed_server):
    body = (SAMPLES / "launch-pad.xml").read_bytes()
    url = feed_server.add("/gz.xml", body=body, gzip=True)
    result = fetch(url)
    assert result.content == body
    assert feed_server.requests_to("/gz.xml")[0].headers["accept-encoding"].startswith("gzip")
    bomb = feed_server.add("/bomb.xml", body=b"<rss>" + b"\0" * 3_000_000, gzip=True)
    with pytest.raises(FeedError, match=r"larger than the 1 MB limit$"):
        fetch(bomb, max_bytes=1_000_000)


def test_a_huge_feed_is_refused_whether_or_not_it_says_its_length(feed_server):
    big = b"<rss>" + b"x" * 3_000_000 + b"</rss>"
    declared = feed_server.add("/declared.xml", body=big)
    streamed = feed_server.add("/streamed.xml", body=big, send_length=False)
    for url in (declared, streamed):
        with pytest.raises(FeedError, match=r"larger than the 1 MB limit$"):
            fetch(url, max_bytes=1_000_000)


def test_the_redirect_bound_is_a_setting(feed_server):
    feed_server.add("/feed.xml", body=b"<rss/>")
    feed_server.add("/a", status=301, location="/b")
    feed_server.add("/b", status=301, location="/feed.xml")
    assert fetch(feed_server.url("/a"), policy=FetchPolicy(max_redirects=2)).redirects == 2
    with pytest.raises(FeedError, match="more than 1 redirects"):
        fetch(feed_server.url("/a"), policy=FetchPolicy(max_redirects=1))


@pytest.mark.parametrize(
    "content_type", ["text/html; charset=utf-8", "application/octet-stream", "text/plain"]
)
def test_a_feed_served_with_a_wrong_content_type_is_still_read(feed_server, content_type):
    url = feed_server.add(
        "/feed", body=(SAMPLES / "internet-space.xml").read_bytes(), content_type=content_type
    )
    fetched = fetch(url)
    assert fetched.content_type == content_type
    feed = parse(
        fetched.content, source=url, section="s", now=NOW, content_type=fetched.content_type
    )
    assert len(feed.articles) == 7


def test_the_charset_named_by_the_server_is_used_for_an_undeclared_document():
    text = "Новости Бузулука"
    body = (
        f"<rss version='2.0'><channel><title>{text}</title><item><title>{text}</title>"
        "<link>https://e.org/1</link></item></channel></rss>"
    ).encode("cp1251")
    told = parse(
        body,
        source="f",
        section="s",
        now=NOW,
        content_type="application/rss+xml; charset=windows-1251",
    )
    assert (told.title, told.articles[0].title, told.warnings) == (text, text, ())


def test_legacy_charsets_declared_or_guessed_come_out_as_unicode():
    iconv = parse_file(FEED_DATA / "node-feedparser" / "iconv.xml")
    assert iconv.articles[0].title.startswith("В Бузулуке главные стройплощадки")  # noqa: RUF001
    guessed = parse_file(FEED_DATA / "illformed/feedparser/chardet/koi8r.xml")
    assert guessed.ill_formed
    assert guessed.warnings[0] == (
        "charset guessed: not utf-8 as declared or assumed, read as KOI8-R (used anyway)"
    )


# -- parse: bases, categories, dates, tracking, sanitizing ------------------------------------


def test_a_local_feed_resolves_relative_links_against_its_self_link_or_id():
    feed = parse_file(FEED_DATA / "feedjira" / "SamRuby.xml")
    assert len(feed.articles) == 20 and feed.warnings == ()
    assert all(a.url.startswith("http://intertwingly.net/blog/") for a in feed.articles)


def test_categories_are_read_for_routing():
    (article,) = parse_file(FEED_DATA / "node-feedparser" / "category-feed.xml").articles
    assert article.categories == ("Water Pollution", "Gowanus Canal (Brooklyn, NY)")


def test_implausibly_old_dates_are_dropped_and_tracking_parameters_stripped():
    items = (
        "<item><title>Epoch</title><link>https://e.org/e?utm_source=rss&amp;id=4</link>"
        "<pubDate>Thu, 01 Jan 1970 00:00:00 GMT</pubDate></item>"
    )
    feed = parse(rss(items), source="f.xml", section="s", now=NOW)
    (article,) = feed.articles
    assert (article.published_at, article.url) == (None, "https://e.org/e?id=4")
    assert feed.warnings == ("1 entry with an implausibly old date (taken as undated)",)


def test_an_empty_feed_is_a_feed_with_a_warning_not_an_error():
    feed = parse(rss(""), source="f.xml", section="s", now=NOW)
    assert (feed.articles, feed.warnings, feed.version) == (
        (),
        ("the feed has no entries",),
        "rss20",
    )


HOSTILE_ITEM = """<item><title><![CDATA[Launch <script>alert('t')</script><b onclick="x()">today</b>
Bcc: victim@example.org]]></title>
<link>https://e.org/a</link>
<author>evil@example.org (Mallory<img src=x onerror=alert(1)>)</author>
<description><![CDATA[<p style="x" onmouseover="steal()">Read <a href="javascript:alert(1)">this</a>
<iframe src="https://evil.example/"></iframe><style>body{display:none}</style>
<img src="javascript:alert(2)"><svg onload="alert(3)"></svg>&lt;script&gt;</p>]]></description>
<media:content url="javascript:alert(4)" medium="image"/>
</item>
<item><title>B</title><link>javascript:alert(5)</link></item>
<item><title>C</title><link>data:text/html,hi</link></item>"""


def test_nothing_dangerous_from_a_feed_survives_parsing():
    feed = parse(rss(HOSTILE_ITEM), source="f.xml", section="s", now=NOW)
    (article,) = feed.articles
    assert article.title == "Launch today Bcc: victim@example.org"
    assert article.summary == "Read this <script>"  # text now, escaped wherever it is shown
    assert article.byline == "Mallory"
    assert article.image is None
    fields = " ".join(
        str(v) for v in (article.title, article.summary, article.byline, article.url, article.image)
    )
    for bad in (
        "javascript:",
        "onclick",
        "onerror",
        "onmouseover",
        "onload",
        "iframe",
        "display:none",
        "\n",
        "\r",
        "alert(1)",
    ):
        assert bad not in fields


def _cleaned_by_nh3(value: str) -> str:
    """``plain_text`` of a string as nh3 cleans it, whatever the string."""
    import html

    import nh3

    from digest.feeds.text import _DROPPED_WITH_CONTENT, one_line

    cleaned = nh3.clean(
        value, tags=set(), attributes={}, clean_content_tags=_DROPPED_WITH_CONTENT, link_rel=None
    )
    return one_line(html.unescape(cleaned))


TEXT_WITHOUT_MARKUP = [
    "a &amp;lt; b",
    "&notit; AT&T &amp &unknown; fish &chips &copy2026",
    "x\x00y &#0; &#x110000; &#xD800; &#150; &#x80; &#13;",
    "a\r\nb \ufeffbom &nbsp;x &#128512; a > b &gt",
]


@pytest.mark.parametrize("value", TEXT_WITHOUT_MARKUP)
def test_text_without_markup_reads_as_nh3_would_clean_it(value):
    assert plain_text(value) == _cleaned_by_nh3(value)


def test_every_string_of_the_corpus_without_markup_reads_as_nh3_would_clean_it(corpus):
    import feedparser

    strings = set()
    for path in sorted((corpus / "feeds").rglob("*")):
        if path.is_file() and path.suffix != ".md":
            doc = feedparser.parse(path.read_bytes(), sanitize_html=False)
            for entry in doc.entries:
                for value in entry.values():
                    items = value if isinstance(value, list) else [value]
                    for item in items:
                        text = item.get("value") if isinstance(item, dict) else item
                        if isinstance(text, str) and "<" not in text:
                            strings.add(text)
    assert len(strings) > 1000
    assert [s for s in strings if plain_text(s) != _cleaned_by_nh3(s)] == []
