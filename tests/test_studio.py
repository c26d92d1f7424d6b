"""The preview studio over real HTTP (uvicorn on 127.0.0.1), and the check and preview CLI."""

from __future__ import annotations

import inspect
import json
import mailbox
import re
import time
from email import policy
from email.parser import BytesParser

import httpx
import pytest
import uvicorn

from digest import studio
from digest.cli import app
from tests.support.cli import load_sample, run, runner, sample_settings, set_settings
from tests.support.values import EXAMPLE_CSV, ROOT
from tests.support.web import base_url, uvicorn_running


@pytest.fixture
def project(monkeypatch, tmp_path, db_url):
    """The sample newsletter with its articles fetched, a user template folder, subscribers."""
    config = tmp_path / "digest.toml"
    config.write_text(
        (ROOT / "digest.toml").read_text().replace('"samples/', f'"{ROOT}/samples/'),
        encoding="utf-8",
    )
    (tmp_path / "templates").mkdir()
    settings = sample_settings(
        db_url,
        DIGEST_CONFIG=str(config),
        DIGEST_OUTBOX=str(tmp_path / "outbox"),
        DIGEST_TEMPLATES=str(tmp_path / "templates"),
    )
    set_settings(monkeypatch, settings)
    load_sample()
    return tmp_path


@pytest.fixture
def studio_client(project):
    """An HTTP client of the studio, served by uvicorn on a loopback port."""
    config = uvicorn.Config(studio.create_app(), host="127.0.0.1", port=0, log_level="warning")
    with (
        uvicorn_running(config) as server,
        httpx.Client(base_url=base_url(server), timeout=20) as client,
    ):
        yield client


def test_the_studio_binds_to_loopback_by_default():
    assert inspect.signature(studio.serve).parameters["host"].default == "127.0.0.1"
    assert "--host" in run("preview", "--help").output


def test_index_shows_every_frame_the_text_headers_and_findings(studio_client):
    page = studio_client.get("/")
    assert page.status_code == 200, page.text
    html = page.text
    for scheme in ("light", "dark"):
        for width in (700, 375, 320):
            assert f'width="{width}"' in html
        assert f'src="/frame?scheme={scheme}&amp;"' in html
    assert html.count("<iframe") == 6
    assert 'id="text"' in html and "Orbital Dispatch Daily" in html
    assert "List-Unsubscribe: &lt;https://news.example.com/u/" in html
    assert "Check: 0 error(s)" in html
    assert '<script src="/studio.js">' in html and "<script>" not in html
    assert 'fetch("/version"' in studio_client.get("/studio.js").text


def test_frames_force_light_and_dark(studio_client):
    light = studio_client.get("/frame", params={"scheme": "light"}).text
    dark = studio_client.get("/frame", params={"scheme": "dark"}).text
    assert "prefers-color-scheme" not in light and "prefers-color-scheme" not in dark
    assert "@media (max-width: 0px) {" in light and "@media (min-width: 0px) {" in dark
    assert '<meta name="color-scheme" content="dark">' in dark
    assert '<base target="_blank">' in light


def test_text_headers_check_and_eml(studio_client):
    text = studio_client.get("/text").text
    assert "Unsubscribe:" in text and "https://news.example.com/u/" in text
    headers = studio_client.get("/headers").text
    assert headers.startswith("Date: ") and "\nList-Unsubscribe-Post: " in headers
    report = studio_client.get("/check").json()
    assert report["recipient"] == "reader@example.com"
    assert not [f for f in report["findings"] if f["severity"] == "error"]
    eml = studio_client.get("/message.eml")
    assert eml.headers["content-type"].startswith("message/rfc822")
    message = BytesParser(policy=policy.default).parsebytes(eml.content)
    assert message.get_content_type() == "multipart/alternative"


def test_any_section_set_or_subscriber(studio_client):
    text = studio_client.get(
        "/text", params=[("section", "drone-space"), ("section", "launch-pad")]
    ).text
    assert "DRONE SPACE" in text and "LAUNCH PAD" in text and "INTERNET SPACE" not in text
    page = studio_client.get("/", params={"section": "drone-space"}).text
    assert 'value="drone-space" checked' in page and 'value="launch-pad">' in page
    email = EXAMPLE_CSV.read_text().splitlines()[1].split(",")[0]
    assert studio_client.get("/check", params={"subscriber": email}).json()["recipient"] == email
    missing = studio_client.get("/", params={"subscriber": "nobody@example.com"})
    assert missing.status_code == 500 and "no subscriber nobody@example.com" in missing.text


def test_the_studio_answers_loopback_host_names_only(studio_client):
    port = studio_client.base_url.port
    for host in (
        "127.0.0.1",
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        f"[::1]:{port}",
        f"LOCALHOST:{port}",
    ):
        assert studio_client.get("/version", headers={"Host": host}).status_code == 200, host
    # A page of another site that rebinds its own name to 127.0.0.1 sends that name.
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", ""):
        for path in ("/", "/text", "/message.eml", "/version"):
            refused = studio_client.get(path, headers={"Host": host})
            assert refused.status_code == 421 and "Orbital" not in refused.text, (host, path)


def test_the_studio_binds_other_addresses_only_when_told_and_then_warns(project):
    assert studio.allowed_hosts("127.0.0.1") == {"127.0.0.1", "localhost", "[::1]"}
    assert studio.allowed_hosts("192.0.2.7") == {"127.0.0.1", "localhost", "[::1]", "192.0.2.7"}
    assert studio.allowed_hosts("0.0.0.0") is None
    assert not studio.off_loopback("127.0.0.1") and not studio.off_loopback("::1")
    assert studio.off_loopback("0.0.0.0") and studio.off_loopback("news.example.com")
    import socket

    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))
    taken.listen()
    try:  # the port is taken, so the studio stops right after its warning
        result = runner.invoke(
            app, ["preview", "--serve", "--host", "0.0.0.0", "--port", str(taken.getsockname()[1])]
        )
    finally:
        taken.close()
    assert result.exit_code != 0
    assert "warning: the studio listens on 0.0.0.0, not loopback" in result.stderr


def test_the_studio_sends_the_security_headers_of_serve(studio_client):
    for path in ("/", "/frame", "/text", "/version", "/studio.js", "/message.eml"):
        headers = studio_client.get(path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";")[0]
        assert "frame-ancestors 'self'" in csp and headers["x-frame-options"] == "SAMEORIGIN"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"


def test_the_studio_lists_no_subscriber(studio_client):
    page = studio_client.get("/").text
    emails = [line.split(",")[0] for line in EXAMPLE_CSV.read_text().splitlines()[1:]]
    assert emails and not [e for e in emails if e in page]


def test_the_studios_links_do_nothing_on_the_live_edge(studio_client, project):
    from datetime import UTC, datetime

    from starlette.testclient import TestClient

    from digest import pipeline
    from digest.web import create_app

    email = EXAMPLE_CSV.read_text().splitlines()[1].split(",")[0]
    text = studio_client.get("/text", params={"subscriber": email}).text
    unsubscribe = re.search(r"https://news\.example\.com(/u/\S+)", text).group(1)
    preferences = re.search(r"https://news\.example\.com(/p/\S+)", text).group(1)
    view = re.search(r"https://news\.example\.com(/e/\S+)", text).group(1)
    ctx = pipeline.Context.open()
    try:
        pipeline.current_edition(
            ctx, ctx.newsletter.get_list("daily"), datetime.now(UTC), create=True
        )
        live = TestClient(
            create_app(ctx.settings, ctx.newsletter, ctx.store), base_url="https://news.example.com"
        )
        for path in (unsubscribe, preferences, view):
            assert live.get(path).status_code == 404, path
        assert live.post(unsubscribe).status_code == 404
        assert live.post(preferences, data={"action": "unsubscribe"}).status_code == 404
        assert ctx.store.record(email).membership("daily").state == "active"
        # The same message composed for a real send does act there (the check can fail).
        real = pipeline.sample(
            ctx, "daily", now=datetime.now(UTC), subscriber_email=email
        ).message.raw.decode()
        path = re.search(r"https://news\.example\.com(/u/[A-Za-z0-9_-]+)", real).group(1)
        assert live.get(path).status_code == 200
    finally:
        ctx.close()


def test_the_studio_works_in_a_browser_under_its_headers(studio_client, browser):
    """Its own script runs (frames are fitted to their messages) and its frames load, under
    the Content-Security-Policy that lets no message run a script."""
    page = browser.page(f"{studio_client.base_url}/", 1400)
    fitted = (
        "[...document.querySelectorAll('iframe')].map(f => f.style.height !== '' && "
        "f.contentDocument !== null && "
        "f.contentDocument.body.innerText.includes('LAUNCH PAD'))"
    )
    deadline = time.monotonic() + 20
    while (found := page.evaluate(fitted)) != [True] * 6:
        assert time.monotonic() < deadline, found
        time.sleep(0.1)  # polling the page with a deadline
    assert (
        page.evaluate("document.body.dataset.version")
        == studio_client.get("/version").json()["version"]
    )
    page.close()


def test_reloads_on_a_template_change_and_shows_template_errors(studio_client, project):
    before = studio_client.get("/version").json()["version"]
    override = project / "templates" / "digest.txt.j2"
    override.write_text("Custom digest for {{ recipient.email }}\n{{ urls.unsubscribe }}\n")
    after = studio_client.get("/version").json()["version"]
    assert after != before
    assert studio_client.get("/text").text.startswith("Custom digest for reader@example.com")
    override.write_text("{{ no_such_value }}\n")
    broken = studio_client.get("/")
    assert broken.status_code == 500 and "digest.txt.j2" in broken.text
    assert '<script src="/studio.js">' in broken.text  # it keeps polling: the fix shows itself
    override.unlink()
    assert studio_client.get("/").status_code == 200


def test_reloads_on_a_newsletter_definition_change(studio_client, project):
    before = studio_client.get("/version").json()["version"]
    config = project / "digest.toml"
    config.write_text(
        config.read_text().replace(
            'title = "Orbital Dispatch Daily"', 'title = "Orbital Dispatch Morning"'
        )
    )
    assert studio_client.get("/version").json()["version"] != before
    assert "Orbital Dispatch Morning" in studio_client.get("/text").text


# -- the CLI ---------------------------------------------------------------------------


def test_check_command_on_the_demo_edition(project):
    result = run("check")
    assert "0 error(s)" in result.output
    report = json.loads(run("check", "--json").output)
    assert report["errors"] == 0 and report["recipient"] == "reader@example.com"


def test_send_refuses_a_message_that_fails_check(project):
    broken = (
        (ROOT / "templates" / "digest.html.j2")
        .read_text()
        .replace("</body>", "<script>alert(1)</script></body>")
    )
    (project / "templates" / "digest.html.j2").write_text(broken)
    result = run("check", code=13)
    assert "<script>" in result.output
    result = run("send", code=13)
    assert "nothing sent" in result.stderr and "script" in result.stderr
    assert not (project / "outbox").exists() or not mailbox.Maildir(project / "outbox").keys()
    summary = json.loads(run("send", "--json", code=13).output)
    assert summary["status"] == "check-failed" and summary["sent"] == 0


def test_preview_reports_trimming(project):
    (project / "templates" / "base.css").write_text(
        (ROOT / "templates" / "base.css").read_text()
        + "\n.more-item, .item-text { padding: 0; "
        + " ".join(f"--pad-{i}: {'x' * 40};" for i in range(60))
        + " }\n"
    )
    result = run("preview", "--out", str(project / "preview"))
    assert "trimmed: to stay under 90 KB of HTML" in result.output
    assert (project / "preview" / "digest.html").exists()


def test_the_studio_shows_the_curation_and_reloads_when_it_changes(studio_client):
    before = studio_client.get("/version").json()["version"]
    page = studio_client.get("/").text
    assert "a draft, rebuilt at every look" in page and "lead chosen" not in page
    view = json.loads(run("editions", "show", "today", "--json").stdout)
    lead = view["sections"][1]["articles"][2]
    run("editions", "lead", "today", str(lead["id"]))
    assert studio_client.get("/version").json()["version"] != before
    page = studio_client.get("/").text
    assert f"lead chosen: {lead['id']} " in page
    text = studio_client.get("/text").text
    assert text.index(lead["title"]) < text.index(view["sections"][1]["articles"][0]["title"])
