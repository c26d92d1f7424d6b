"""The preview studio over real HTTP (uvicorn on 127.0.0.1), and the check and preview CLI."""

from __future__ import annotations

import inspect
import json
import mailbox
from email import policy
from email.parser import BytesParser

import httpx
import pytest
import uvicorn

from digest import studio
from tests.support.cli import load_sample, run, sample_settings, set_settings
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
    assert 'fetch("/version"' in html


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
    assert 'fetch("/version"' in broken.text  # it keeps polling, so the fix shows by itself
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
        + "\n.more-item { padding: 0; "
        + " ".join(f"--pad-{i}: {'x' * 40};" for i in range(60))
        + " }\n"
    )
    result = run("preview", "--out", str(project / "preview"))
    assert "trimmed: to stay under 90 KB of HTML" in result.output
    assert (project / "preview" / "digest.html").exists()
