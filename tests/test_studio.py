"""The preview studio over real HTTP (uvicorn on 127.0.0.1), and the check and preview CLI."""

from __future__ import annotations

import inspect
import json
import mailbox
import threading
import time
from email import policy
from email.parser import BytesParser

import httpx
import pytest
import uvicorn
from conftest import ROOT
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
    config.write_text(
        (ROOT / "digest.toml").read_text().replace('"samples/', f'"{ROOT}/samples/'),
        encoding="utf-8",
    )
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
    assert 'fetch("/version"' in html


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
    text = server.get("/text", params=[("section", "drone-space"), ("section", "launch-pad")]).text
    assert "DRONE SPACE" in text and "LAUNCH PAD" in text and "INTERNET SPACE" not in text
    page = server.get("/", params={"section": "drone-space"}).text
    assert 'value="drone-space" checked' in page and 'value="launch-pad">' in page
    email = (ROOT / "subscribers" / "example.csv").read_text().splitlines()[1].split(",")[0]
    assert server.get("/check", params={"subscriber": email}).json()["recipient"] == email
    missing = server.get("/", params={"subscriber": "nobody@example.com"})
    assert missing.status_code == 500 and "no subscriber nobody@example.com" in missing.text


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
    assert 'fetch("/version"' in broken.text  # it keeps polling, so the fix shows by itself
    override.unlink()
    assert server.get("/").status_code == 200


def test_reloads_on_a_newsletter_definition_change(server, project):
    before = server.get("/version").json()["version"]
    config = project / "digest.toml"
    config.write_text(
        config.read_text().replace(
            'title = "Orbital Dispatch Daily"', 'title = "Orbital Dispatch Morning"'
        )
    )
    assert server.get("/version").json()["version"] != before
    assert "Orbital Dispatch Morning" in server.get("/text").text


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
        + "\n.more-item { padding: 0; "
        + " ".join(f"--pad-{i}: {'x' * 40};" for i in range(60))
        + " }\n"
    )
    result = run("preview", "--out", str(project / "preview"))
    assert "trimmed: to stay under 90 KB of HTML" in result.output
    assert (project / "preview" / "digest.html").exists()
