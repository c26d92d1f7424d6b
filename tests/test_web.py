"""The public edge over real HTTP: a uvicorn server on a loopback port, a real SQLite file,
a real SMTP server (aiosmtpd) for the confirmation mail and the digests, headless chromium
for the confirm page."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import httpx
import pytest

from digest import pipeline
from digest.audience.tokens import make_token
from digest.config import load_newsletter, load_settings
from digest.models import Article, NewSubscriber, SubscriberStatus
from digest.store import open_store
from digest.web import create_app
from digest.web.server import server_config
from tests.support.schedules import daily_and_weekly_config
from tests.support.smtpd import free_port, smtp_server
from tests.support.values import ROOT, SECRET
from tests.support.web import uvicorn_running


@dataclass
class Site:
    url: str
    ctx: pipeline.Context
    smtp: object
    http: httpx.Client

    def token(self, sid: int, purpose: str, list_name: str = "daily") -> str:
        return make_token(SECRET.encode(), sid, list_name, purpose)


@pytest.fixture
def site(tmp_path, db_url) -> Iterator[Site]:
    yield from _site(tmp_path, db_url, ROOT / "digest.toml")


@pytest.fixture
def local_site(tmp_path, db_url) -> Iterator[Site]:
    """The site of a newsletter whose lists deliver at each reader's own hour."""
    yield from _site(
        tmp_path, db_url, daily_and_weekly_config(tmp_path, "Europe/Oslo", deliver_local=True)
    )


def _site(tmp_path, db_url, config) -> Iterator[Site]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with smtp_server() as smtp:
        settings = load_settings(
            config=config,
            database_url=db_url,
            secret_key=SECRET,
            base_url=url,
            smtp_url=f"smtp://127.0.0.1:{smtp.port}",
            outbox=tmp_path / "outbox",
        )
        newsletter = load_newsletter(settings.config)
        store = open_store(settings.database_url)
        app = create_app(settings, newsletter, store)
        ctx = pipeline.Context(settings, newsletter, store)
        config = server_config(app, settings, log_level="warning")
        with uvicorn_running(config, [sock]), httpx.Client(base_url=url, timeout=10) as http:
            yield Site(url, ctx, smtp, http)
        store.close()


def add(site: Site, email: str, **fields) -> int:
    site.ctx.store.add_subscribers(
        [NewSubscriber(email=email, lists=("daily",), **fields)], datetime.now(UTC)
    )
    return site.ctx.store.subscriber(email).id


def state(site: Site, email: str) -> tuple[str, str, bool]:
    record = site.ctx.store.record(email)
    membership = record.membership("daily")
    return record.status.value, membership.state, membership.paused


def links(raw: bytes) -> dict[str, str]:
    msg = message_from_bytes(raw, policy=policy.default)
    header = str(msg["List-Unsubscribe"])
    return {
        "unsubscribe": re.search(r"<(https?://[^>]+)>", header).group(1),
        "post": str(msg["List-Unsubscribe-Post"]),
        "html": msg.get_body(("html",)).get_content(),
    }


def test_the_whole_loop_subscribe_confirm_send_one_click_unsubscribe(site):
    other = add(site, "stays@example.com")
    page = site.http.post(
        "/subscribe",
        data={
            "email": "Reader@Example.com",
            "name": "Rea",
            "section": ["launch-pad", "drone-space"],
            "list": "daily",
        },
    )
    assert page.status_code == 200 and "Check your inbox" in page.text
    confirmation = site.smtp.handler.wait_for_messages(1)[0]
    assert confirmation.rcpt_tos == ("Reader@example.com",)
    confirm_url = re.search(rb"(http://\S+/c/[A-Za-z0-9_-]+)", confirmation.raw).group(1).decode()
    assert site.ctx.store.record("reader@example.com").status is SubscriberStatus.pending

    # A scanner fetching the link confirms nothing; the button does, once.
    assert "Confirm my subscription" in site.http.get(confirm_url).text
    assert site.ctx.store.record("reader@example.com").status is SubscriberStatus.pending
    done = site.http.post(confirm_url)
    assert done.status_code == 200 and "You are subscribed" in done.text
    record = site.ctx.store.record("reader@example.com")
    assert record.status is SubscriberStatus.active and record.consent_ip == "127.0.0.1"
    assert record.consent_source == "web:double-opt-in"
    assert record.membership("daily").sections == frozenset({"launch-pad", "drone-space"})
    reused = site.http.post(confirm_url)
    assert reused.status_code == 404

    # The first edition reaches both readers.
    now = datetime.now(UTC)
    pipeline.fetch(site.ctx, now)
    summary = asyncio.run(pipeline.send(site.ctx, "daily", now=lambda: now))
    assert summary.sent == 2, summary
    digest = next(
        m
        for m in site.smtp.handler.wait_for_messages(3)[1:]
        if m.rcpt_tos == ("Reader@example.com",)
    )
    found = links(digest.raw)
    assert found["post"] == "List-Unsubscribe=One-Click"

    # GET shows a button and changes nothing; POST unsubscribes at once, 200, no redirect.
    shown = site.http.get(found["unsubscribe"])
    assert shown.status_code == 200 and '<form method="post">' in shown.text
    assert state(site, "reader@example.com") == ("active", "active", False)
    gone = site.http.post(
        found["unsubscribe"],
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert gone.status_code == 200 and "location" not in gone.headers
    assert state(site, "reader@example.com") == ("unsubscribed", "unsubscribed", False)

    # The next edition skips that reader and still reaches the other one.
    later = now + timedelta(days=1)
    site.ctx.store.save_articles(
        [
            Article(
                key="next-day",
                section="launch-pad",
                title="Next day launch",
                url="https://x.example/n",
            )
        ],
        later - timedelta(hours=1),
    )
    again = asyncio.run(pipeline.send(site.ctx, "daily", now=lambda: later))
    assert again.sent == 1, again
    last = site.smtp.handler.wait_for_messages(4)[-1]
    assert last.rcpt_tos == ("stays@example.com",)
    assert site.ctx.store.subscriber("stays@example.com").id == other


def test_a_test_copys_links_act_for_nobody_even_as_a_reader(site):
    add(site, "reader@example.com")
    now = datetime.now(UTC)
    pipeline.fetch(site.ctx, now)
    asyncio.run(
        pipeline.send_proofs(
            site.ctx, "daily", "editor@example.org", as_email="reader@example.com", now=lambda: now
        )
    )
    copy = site.smtp.handler.wait_for_messages(1)[0]
    found = links(copy.raw)
    unsubscribed = site.http.post(
        found["unsubscribe"],
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert unsubscribed.status_code == 404
    preferences = re.search(r'href="([^"]*/p/[^"]+)"', found["html"]).group(1)
    assert site.http.get(preferences).status_code == 404
    assert state(site, "reader@example.com") == ("active", "active", False)


def test_forged_stale_and_foreign_tokens_change_nothing_and_tell_nothing(site):
    sid = add(site, "victim@example.com")
    good = site.token(sid, "unsubscribe")
    tampered = good[:-2] + ("AA" if good[-2:] != "AA" else "BB")
    nobody = site.token(987654, "unsubscribe")
    wrong_purpose = site.token(sid, "preferences")
    answers = [site.http.post(f"/u/{t}") for t in (tampered, nobody, wrong_purpose, "x" * 300)]
    assert {a.status_code for a in answers} == {404}
    assert len({a.text for a in answers}) == 1
    assert state(site, "victim@example.com") == ("active", "active", False)
    # An erased subscriber's links die with them, even once a newcomer is added.
    erased = site.token(sid, "preferences")
    site.ctx.store.remove_subscriber("victim@example.com", datetime.now(UTC), erase=True)
    newcomer = add(site, "newcomer@example.com")
    assert newcomer != sid
    assert site.http.get(f"/p/{erased}").status_code == 404
    assert site.http.post(f"/u/{good}").status_code == 404


def test_security_headers_on_every_page(site):
    sid = add(site, "h@example.com")
    for path in ("/subscribe", f"/u/{site.token(sid, 'unsubscribe')}", "/u/forged"):
        headers = site.http.get(path).headers
        assert "default-src 'none'" in headers["content-security-policy"]
        assert "script-src" not in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"
        assert "server" not in headers


def test_preferences_choose_sections_pause_and_unsubscribe(site):
    sid = add(site, "p@example.com")
    url = f"/p/{site.token(sid, 'preferences')}"
    page = site.http.get(url)
    assert page.text.count('type="checkbox" name="section"') == 5
    saved = site.http.post(url, data={"action": "save", "section": ["launch-pad"], "pause": "on"})
    assert saved.status_code == 303
    assert "Saved." in site.http.get(saved.headers["location"]).text
    record = site.ctx.store.record("p@example.com")
    assert record.membership("daily").sections == frozenset({"launch-pad"})
    assert record.membership("daily").paused
    assert site.ctx.store.recipients("daily") == []
    empty = site.http.post(url, data={"action": "save"})
    assert empty.status_code == 400 and "at least one section" in empty.text
    site.http.post(url, data={"action": "unsubscribe"})
    assert state(site, "p@example.com")[:2] == ("unsubscribed", "unsubscribed")
    site.http.post(url, data={"action": "resubscribe"})
    assert state(site, "p@example.com") == ("active", "active", False)


def test_saving_preferences_keeps_an_unsubscribed_reader_unsubscribed(site):
    sid = add(site, "gone@example.com", status=SubscriberStatus.unsubscribed)  # as imported
    url = f"/p/{site.token(sid, 'preferences')}"
    saved = site.http.post(url, data={"action": "save", "section": ["launch-pad"]})
    assert saved.status_code == 303
    assert state(site, "gone@example.com")[0] == "unsubscribed"
    assert site.ctx.store.recipients("daily") == []
    site.ctx.store.suppress("gone@example.com", "complaint", datetime.now(UTC))
    again = site.http.post(url, data={"action": "resubscribe"})
    assert again.status_code == 400 and "cannot be subscribed again" in again.text
    assert state(site, "gone@example.com")[0] == "unsubscribed"


def test_preferences_choose_how_often_saved_by_post_only(site):
    sid = add(site, "f@example.com")
    url = f"/p/{site.token(sid, 'preferences')}"
    page = site.http.get(url, params={"frequency": "weekly"})  # a link's parameters save nothing
    assert '<input type="radio" name="frequency" value="daily" checked>' in page.text
    assert '<input type="radio" name="frequency" value="weekly">' in page.text
    assert site.ctx.store.record("f@example.com").membership("daily").frequency is None
    form = {"action": "save", "section": ["launch-pad"], "frequency": "weekly"}
    assert site.http.post(url, data=form).status_code == 303
    assert site.ctx.store.record("f@example.com").membership("daily").frequency == "weekly"
    assert 'value="weekly" checked' in site.http.get(url).text
    bad = site.http.post(url, data=form | {"frequency": "monthly"})
    assert bad.status_code == 400 and "daily, weekly" in bad.text
    assert site.ctx.store.record("f@example.com").membership("daily").frequency == "weekly"
    # How often is no consent: a reader who left stays unsubscribed.
    site.http.post(url, data={"action": "unsubscribe"})
    gone = add(site, "gone-f@example.com", status=SubscriberStatus.unsubscribed)
    gone_url = f"/p/{site.token(gone, 'preferences')}"
    assert site.http.post(gone_url, data=form).status_code == 303
    assert state(site, "gone-f@example.com")[0] == "unsubscribed"
    assert site.ctx.store.record("gone-f@example.com").membership("daily").frequency == "weekly"


def test_a_reader_of_a_list_delivering_at_their_hour_chooses_their_zone_by_post_only(local_site):
    site_ = local_site
    sid = add(site_, "z@example.com")
    url = f"/p/{site_.token(sid, 'preferences')}"
    page = site_.http.get(url, params={"timezone": "Asia/Tokyo"})  # parameters save nothing
    assert '<select id="timezone" name="timezone">' in page.text
    assert '<option value="" selected>The list\'s own (Europe/Oslo)</option>' in page.text
    assert "<option>Asia/Tokyo</option>" in page.text and "US/Eastern" not in page.text
    assert site_.ctx.store.record("z@example.com").timezone is None
    form = {"action": "save", "section": ["launch-pad"], "timezone": "Asia/Tokyo"}
    assert site_.http.post(url, data=form).status_code == 303
    assert site_.ctx.store.record("z@example.com").timezone == "Asia/Tokyo"
    assert "<option selected>Asia/Tokyo</option>" in site_.http.get(url).text
    # A zone that does not exist is refused, and nothing of the form is saved.
    bad = site_.http.post(url, data=form | {"section": ["drone-space"], "timezone": "Mars/Olympus"})
    assert bad.status_code == 400 and "not an IANA time zone" in bad.text
    record = site_.ctx.store.record("z@example.com")
    assert record.timezone == "Asia/Tokyo" and record.membership("daily").sections == {"launch-pad"}
    # Back to the list's own zone.
    assert site_.http.post(url, data=form | {"timezone": ""}).status_code == 303
    assert site_.ctx.store.record("z@example.com").timezone is None


def test_a_list_sending_at_its_own_hour_asks_for_no_zone(site):
    sid = add(site, "n@example.com")
    page = site.http.get(f"/p/{site.token(sid, 'preferences')}")
    assert page.status_code == 200 and 'name="timezone"' not in page.text


def test_a_sign_up_carries_the_frequency_chosen_through_its_confirmation(site):
    form = site.http.get("/subscribe")
    assert '<input type="radio" name="frequency" value="weekly">' in form.text
    page = site.http.post(
        "/subscribe", data={"email": "w@example.com", "list": "daily", "frequency": "weekly"}
    )
    assert "Check your inbox" in page.text
    confirmation = site.smtp.handler.wait_for_messages(1)[0]
    confirm_url = re.search(rb"(http://\S+/c/[A-Za-z0-9_-]+)", confirmation.raw).group(1).decode()
    assert site.http.post(confirm_url).status_code == 200
    membership = site.ctx.store.record("w@example.com").membership("daily")
    assert (membership.state, membership.frequency) == ("active", "weekly")
    refused = site.http.post(
        "/subscribe", data={"email": "m@example.com", "list": "daily", "frequency": "monthly"}
    )
    assert refused.status_code == 400 and "Choose how often: daily, weekly." in refused.text


def test_view_in_browser_is_a_shared_copy_that_names_nobody_and_acts_for_nobody(site):
    one = add(site, "one@example.com", name="Ona Reader", sections=frozenset({"launch-pad"}))
    add(site, "two@example.com")
    now = datetime.now(UTC)
    pipeline.fetch(site.ctx, now)
    edition = pipeline.current_edition(
        site.ctx, site.ctx.newsletter.get_list("daily"), now, create=True
    )
    views = []
    for email in ("one@example.com", "two@example.com"):
        raw = pipeline.sample(site.ctx, "daily", now=now, subscriber_email=email).message.raw
        views.append(re.search(r'href="(http://[^"]+/e/[^"]+)"', links(raw)["html"]).group(1))
    assert views[0] == views[1]  # the link is the edition's, not the reader's
    page = site.http.get(views[0])
    assert page.status_code == 200 and "Launch Pad" in page.text
    assert "Military Space" in page.text  # every section: the copy is nobody's
    for personal in (
        "one@example.com",
        "Ona Reader",
        site.token(one, "unsubscribe"),
        site.token(one, "preferences"),
        "/u/",
        "/p/",
    ):
        assert personal not in page.text
    assert f'href="{site.url}/shared?list=daily"' in page.text
    assert "copy that was mailed to you" in site.http.get("/shared?list=daily").text
    # A personal view link mailed earlier opens the same shared copy.
    old = site.http.get(f"/e/{edition.key}/{site.token(one, 'view')}")
    assert old.status_code == 200 and "one@example.com" not in old.text
    assert site.http.get(f"/e/1999-01-01/{views[0].rsplit('/', 1)[1]}").status_code == 404
    assert site.http.get(f"/e/{edition.key}/{site.token(one, 'unsubscribe')}").status_code == 404


def test_sign_up_reveals_nothing_and_does_not_flood(site):
    add(site, "known@example.com")
    site.ctx.store.suppress("blocked@example.com", "complaint", datetime.now(UTC))
    answers = [
        site.http.post("/subscribe", data={"email": e, "list": "daily"})
        for e in (
            "known@example.com",
            "blocked@example.com",
            "fresh@example.com",
            "fresh@example.com",
        )
    ]
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1
    got = site.smtp.handler.wait_for_messages(2)
    assert sorted(m.rcpt_tos[0] for m in got) == ["fresh@example.com", "known@example.com"]
    assert state(site, "known@example.com") == ("active", "active", False)
    bad = site.http.post("/subscribe", data={"email": "not-an-address", "list": "daily"})
    assert bad.status_code == 400 and "not a valid email address" in bad.text
    bot = site.http.post("/subscribe", data={"email": "bot@example.com", "website": "x"})
    assert bot.status_code == 200 and site.ctx.store.record("bot@example.com") is None


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_confirm_page_in_headless_chromium(site, tmp_path):
    sid = add(site, "c@example.com")
    url = f"{site.url}/u/{site.token(sid, 'unsubscribe')}"
    dom = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "Unsubscribe from Orbital Dispatch Daily?" in dom
    assert re.search(r'<form method="post">\s*<button type="submit"', dom)
    # The browser's GET (as a mail scanner's) changed nothing.
    assert state(site, "c@example.com") == ("active", "active", False)


def test_digest_serve_binds_loopback_and_answers(tmp_path, db_url):
    import os
    import signal
    import sys

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")} | {
        "DIGEST_CONFIG": str(ROOT / "digest.toml"),
        "DIGEST_SECRET_KEY": SECRET,
        "DIGEST_DATABASE_URL": db_url,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError(
                        proc.stderr.read()
                        if proc.poll() is not None
                        else "digest serve did not answer"
                    ) from None
                time.sleep(0.05)  # polling the port with a deadline
        assert answer.text == "ok" and answer.headers["x-frame-options"] == "DENY"
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
    assert f"on http://127.0.0.1:{port}" in err
