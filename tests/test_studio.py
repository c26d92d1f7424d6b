"""The preview studio over real HTTP (uvicorn on 127.0.0.1), and the check and preview CLI."""

from __future__ import annotations

import inspect
import json
import mailbox
import re
import threading
import time
from email import policy
from email.parser import BytesParser

import httpx
import pytest
import uvicorn
from conftest import ROOT
from test_browser import browser  # noqa: F401 (the module's headless chromium, shared)
from typer.testing import CliRunner

from digest import studio
from digest.cli import app

runner = CliRunner()


def run(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.exit_code, result.output, result.stderr)
    return result


@pytest.fixture
def project(monkeypatch, tmp_path, db_url):
    """The sample newsletter with its articles fetched, a user template folder, subscribers."""
    config = tmp_path / "digest.toml"
    config.write_text((ROOT / "digest.toml").read_text().replace(
        '"samples/', f'"{ROOT}/samples/'), encoding="utf-8")
    (tmp_path / "templates").mkdir()
    monkeypatch.setenv("DIGEST_CONFIG", str(config))
    monkeypatch.setenv("DIGEST_DATABASE_URL", db_url)
    monkeypatch.setenv("DIGEST_OUTBOX", str(tmp_path / "outbox"))
    monkeypatch.setenv("DIGEST_SECRET_KEY", "k" * 48)
    monkeypatch.setenv("DIGEST_BASE_URL", "https://news.example.com")
    monkeypatch.setenv("DIGEST_TEMPLATES", str(tmp_path / "templates"))
    run("init")
    run("fetch")
    run("subscribers", "import", str(ROOT / "subscribers" / "example.csv"))
    return tmp_path


@pytest.fixture
def server(project):
    config = uvicorn.Config(studio.create_app(), host="127.0.0.1", port=0, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the studio did not start"
        time.sleep(0.01)
    host, port = instance.servers[0].sockets[0].getsockname()[:2]
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=20) as client:
        yield client
    instance.should_exit = True
    thread.join(10)


def test_the_studio_binds_to_loopback_by_default():
    assert inspect.signature(studio.serve).parameters["host"].default == "127.0.0.1"
    assert "--host" in run("preview", "--help").output


def test_index_shows_every_frame_the_text_headers_and_findings(server):
    page = server.get("/")
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
    assert 'fetch("/version"' in server.get("/studio.js").text


def test_frames_force_light_and_dark(server):
    light = server.get("/frame", params={"scheme": "light"}).text
    dark = server.get("/frame", params={"scheme": "dark"}).text
    assert "prefers-color-scheme" not in light and "prefers-color-scheme" not in dark
    assert "@media (max-width: 0px) {" in light and "@media (min-width: 0px) {" in dark
    assert '<meta name="color-scheme" content="dark">' in dark
    assert '<base target="_blank">' in light


def test_text_headers_check_and_eml(server):
    text = server.get("/text").text
    assert "Unsubscribe:" in text and "https://news.example.com/u/" in text
    headers = server.get("/headers").text
    assert headers.startswith("Date: ") and "\nList-Unsubscribe-Post: " in headers
    report = server.get("/check").json()
    assert report["recipient"] == "reader@example.com"
    assert not [f for f in report["findings"] if f["severity"] == "error"]
    eml = server.get("/message.eml")
    assert eml.headers["content-type"].startswith("message/rfc822")
    message = BytesParser(policy=policy.default).parsebytes(eml.content)
    assert message.get_content_type() == "multipart/alternative"


def test_any_section_set_or_subscriber(server):
    text = server.get("/text", params=[("section", "drone-space"),
                                       ("section", "launch-pad")]).text
    assert "DRONE SPACE" in text and "LAUNCH PAD" in text and "INTERNET SPACE" not in text
    page = server.get("/", params={"section": "drone-space"}).text
    assert 'value="drone-space" checked' in page and 'value="launch-pad">' in page
    email = (ROOT / "subscribers" / "example.csv").read_text().splitlines()[1].split(",")[0]
    assert server.get("/check", params={"subscriber": email}).json()["recipient"] == email
    missing = server.get("/", params={"subscriber": "nobody@example.com"})
    assert missing.status_code == 500 and "no subscriber nobody@example.com" in missing.text


def test_the_studio_answers_loopback_host_names_only(server):
    port = server.base_url.port
    for host in ("127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}",
                 f"LOCALHOST:{port}"):
        assert server.get("/version", headers={"Host": host}).status_code == 200, host
    # A page of another site that rebinds its own name to 127.0.0.1 sends that name.
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}",
                 ""):
        for path in ("/", "/text", "/message.eml", "/version"):
            refused = server.get(path, headers={"Host": host})
            assert refused.status_code == 421 and "Orbital" not in refused.text, (host, path)


def test_the_studio_binds_other_addresses_only_when_told_and_then_warns(project):
    assert studio.allowed_hosts("127.0.0.1") == {"127.0.0.1", "localhost", "[::1]"}
    assert studio.allowed_hosts("192.0.2.7") == {"127.0.0.1", "localhost", "[::1]",
                                                 "192.0.2.7"}
    assert studio.allowed_hosts("0.0.0.0") is None
    assert not studio.off_loopback("127.0.0.1") and not studio.off_loopback("::1")
    assert studio.off_loopback("0.0.0.0") and studio.off_loopback("news.example.com")
    import socket

    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))
    taken.listen()
    try:  # the port is taken, so the studio stops right after its warning
        result = runner.invoke(app, ["preview", "--serve", "--host", "0.0.0.0", "--port",
                                     str(taken.getsockname()[1])])
    finally:
        taken.close()
    assert result.exit_code != 0
    assert "warning: the studio listens on 0.0.0.0, not loopback" in result.stderr


def test_the_studio_sends_the_security_headers_of_serve(server):
    for path in ("/", "/frame", "/text", "/version", "/studio.js", "/message.eml"):
        headers = server.get(path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";")[0]
        assert "frame-ancestors 'self'" in csp and headers["x-frame-options"] == "SAMEORIGIN"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"


def test_the_studio_lists_no_subscriber(server):
    page = server.get("/").text
    emails = [line.split(",")[0] for line in
              (ROOT / "subscribers" / "example.csv").read_text().splitlines()[1:]]
    assert emails and not [e for e in emails if e in page]


def test_the_studios_links_do_nothing_on_the_live_edge(server, project):
    from datetime import datetime, timezone

    from starlette.testclient import TestClient

    from digest import pipeline
    from digest.web import create_app

    email = (ROOT / "subscribers" / "example.csv").read_text().splitlines()[1].split(",")[0]
    text = server.get("/text", params={"subscriber": email}).text
    unsubscribe = re.search(r"https://news\.example\.com(/u/\S+)", text).group(1)
    preferences = re.search(r"https://news\.example\.com(/p/\S+)", text).group(1)
    view = re.search(r"https://news\.example\.com(/e/\S+)", text).group(1)
    ctx = pipeline.Context.open()
    try:
        pipeline.current_edition(ctx, ctx.newsletter.get_list("daily"),
                                 datetime.now(timezone.utc), create=True)
        live = TestClient(create_app(ctx.settings, ctx.newsletter, ctx.store),
                          base_url="https://news.example.com")
        for path in (unsubscribe, preferences, view):
            assert live.get(path).status_code == 404, path
        assert live.post(unsubscribe).status_code == 404
        assert live.post(preferences, data={"action": "unsubscribe"}).status_code == 404
        assert ctx.store.record(email).membership("daily").state == "active"
        # The same message composed for a real send does act there (the check can fail).
        real = pipeline.sample(ctx, "daily", now=datetime.now(timezone.utc),
                               subscriber_email=email).message.raw.decode()
        path = re.search(r"https://news\.example\.com(/u/[A-Za-z0-9_-]+)", real).group(1)
        assert live.get(path).status_code == 200
    finally:
        ctx.close()


def test_the_studio_works_in_a_browser_under_its_headers(server, browser):  # noqa: F811
    """Its own script runs (frames are fitted to their messages) and its frames load, under
    the Content-Security-Policy that lets no message run a script."""
    page = browser.page(f"{server.base_url}/", 1400)
    fitted = ("[...document.querySelectorAll('iframe')].map(f => f.style.height !== '' && "
              "f.contentDocument !== null && "
              "f.contentDocument.body.innerText.includes('LAUNCH PAD'))")
    deadline = time.monotonic() + 20
    while (found := page.evaluate(fitted)) != [True] * 6:
        assert time.monotonic() < deadline, found
        time.sleep(0.1)  # polling the page with a deadline
    assert page.evaluate("document.body.dataset.version") == server.get("/version").json()[
        "version"]
    page.close()


def test_reloads_on_a_template_change_and_shows_template_errors(server, project):
    before = server.get("/version").json()["version"]
    override = project / "templates" / "digest.txt.j2"
    override.write_text("Custom digest for {{ recipient.email }}\n{{ urls.unsubscribe }}\n")
    after = server.get("/version").json()["version"]
    assert after != before
    assert server.get("/text").text.startswith("Custom digest for reader@example.com")
    override.write_text("{{ no_such_value }}\n")
    broken = server.get("/")
    assert broken.status_code == 500 and "digest.txt.j2" in broken.text
    assert '<script src="/studio.js">' in broken.text  # it keeps polling: the fix shows itself
    override.unlink()
    assert server.get("/").status_code == 200


def test_reloads_on_a_newsletter_definition_change(server, project):
    before = server.get("/version").json()["version"]
    config = project / "digest.toml"
    config.write_text(config.read_text().replace('title = "Orbital Dispatch Daily"',
                                                 'title = "Orbital Dispatch Morning"'))
    assert server.get("/version").json()["version"] != before
    assert "Orbital Dispatch Morning" in server.get("/text").text


# -- the CLI ---------------------------------------------------------------------------

def test_check_command_on_the_demo_edition(project):
    result = run("check")
    assert "0 error(s)" in result.output
    report = json.loads(run("check", "--json").output)
    assert report["errors"] == 0 and report["recipient"] == "reader@example.com"


def test_send_refuses_a_message_that_fails_check(project):
    broken = (ROOT / "templates" / "digest.html.j2").read_text().replace(
        "</body>", "<script>alert(1)</script></body>")
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
        (ROOT / "templates" / "base.css").read_text() + "\n.more-item { padding: 0; "
        + " ".join(f"--pad-{i}: {'x' * 40};" for i in range(60)) + " }\n")
    result = run("preview", "--out", str(project / "preview"))
    assert "trimmed: to stay under 90 KB of HTML" in result.output
    assert (project / "preview" / "digest.html").exists()
