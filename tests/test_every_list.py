"""A newsletter with two lists: `digest send`, `check` and `preview` without --list cover every
list, and the preview studio picks one. Through the CLI, on a real store and a recording SMTP
server."""

from __future__ import annotations

import json
from email import message_from_bytes, policy

import httpx
import pytest
import uvicorn

from digest import studio
from digest.exits import SEVERITY, ExitCode, most_serious
from tests.support.cli import run, sample_settings, set_settings
from tests.support.newsletters import TWO_LISTS, two_list_config
from tests.support.smtpd import smtp_server
from tests.support.web import base_url, uvicorn_running

DAILY_ONLY, WEEKLY_ONLY, BOTH = "d@example.org", "w@example.org", "b@example.org"


@pytest.fixture
def two_list_project(monkeypatch, tmp_path, db_url):
    """The two-list newsletter, its feeds fetched, a reader on each list and one on both."""
    set_settings(
        monkeypatch,
        sample_settings(
            db_url,
            DIGEST_CONFIG=str(two_list_config(tmp_path)),
            DIGEST_OUTBOX=str(tmp_path / "outbox"),
            DIGEST_SEND_RETRY_BUDGET="0",
        ),
    )
    readers = tmp_path / "readers.csv"
    readers.write_text(
        f"email,lists\n{DAILY_ONLY},daily\n{WEEKLY_ONLY},weekly\n{BOTH},daily;weekly\n"
    )
    run("init")
    run("fetch")
    run("subscribers", "import", str(readers))
    return tmp_path


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def _lists_received(server, email: str) -> list[str]:
    """The List-Id of each message ``email`` received, by list title's start."""
    got = []
    for item in server.handler.messages:
        if email in item.rcpt_tos:
            message = message_from_bytes(item.raw, policy=policy.default)
            got.append(str(message["List-Id"]))
    return sorted(got)


def test_one_send_without_list_sends_every_list_with_one_json_line_each(
    two_list_project, monkeypatch
):
    with smtp_server() as server:
        monkeypatch.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        summaries = _lines(run("send", "--json").stdout)
        assert [s["list"] for s in summaries] == list(TWO_LISTS)
        assert [(s["status"], s["sent"]) for s in summaries] == [("complete", 2), ("complete", 2)]
        assert len(_lists_received(server, DAILY_ONLY)) == 1
        assert len(_lists_received(server, WEEKLY_ONLY)) == 1
        both = _lists_received(server, BOTH)
        assert len(both) == 2 and both[0] != both[1]
        assert _lists_received(server, DAILY_ONLY)[0] in both
        assert _lists_received(server, WEEKLY_ONLY)[0] in both
        again = _lines(run("send", "--json").stdout)
        assert [(s["sent"], s["already_sent"]) for s in again] == [(0, 2), (0, 2)]
        assert len(server.handler.messages) == 4


def test_the_exit_code_is_the_most_serious_of_the_lists(two_list_project, monkeypatch):
    with smtp_server() as server:
        # daily: a permanent failure (11); weekly, sent after it: a deferral (10).
        server.handler.rcpt_replies[DAILY_ONLY] = "550 5.1.1 No such user"
        server.handler.rcpt_replies[WEEKLY_ONLY] = "450 4.2.1 Mailbox busy"
        monkeypatch.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        summaries = _lines(run("send", "--json", code=ExitCode.FAILED).stdout)
        assert [s["status"] for s in summaries] == ["failed", "incomplete"]
        assert (summaries[0]["failed"], summaries[1]["deferred"]) == (1, 1)
        text = run("send", code=ExitCode.INCOMPLETE).stdout  # daily is done; weekly defers
        assert "list daily" in text and "list weekly" in text


def test_the_severity_order_ranks_every_code_and_is_not_the_numeric_order():
    assert sorted(SEVERITY) == sorted(ExitCode)
    assert most_serious([ExitCode.LOCKED, ExitCode.FAILED]) == ExitCode.FAILED
    assert most_serious([ExitCode.OK, ExitCode.INCOMPLETE, ExitCode.OK]) == ExitCode.INCOMPLETE
    assert most_serious([ExitCode.STOPPED, ExitCode.CONFIG]) == ExitCode.CONFIG
    assert most_serious([]) == ExitCode.OK


def test_naming_a_list_sends_that_list_only(two_list_project, monkeypatch):
    with smtp_server() as server:
        monkeypatch.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        summaries = _lines(run("send", "--list", "weekly", "--json").stdout)
        assert [(s["list"], s["sent"]) for s in summaries] == [("weekly", 2)]
        assert sorted(server.handler.recipients()) == [BOTH, WEEKLY_ONLY]


def test_check_without_list_checks_every_list(two_list_project):
    reports = _lines(run("check", "--json").stdout)
    assert len(reports) == 2 and all(r["errors"] == 0 for r in reports)
    text = run("check").stdout
    assert "list daily:" in text and "list weekly:" in text
    assert text.count("0 error(s)") == 2


def test_preview_without_list_writes_each_list_in_its_own_folder(two_list_project):
    out = two_list_project / "preview"
    result = run("preview", "--out", str(out))
    for name in TWO_LISTS:
        assert f"list {name}, edition" in result.stdout
        assert (out / name / "digest.html").exists() and (out / name / "digest.txt").exists()
    assert not (out / "digest.html").exists()


@pytest.fixture
def two_list_studio(two_list_project):
    config = uvicorn.Config(studio.create_app(), host="127.0.0.1", port=0, log_level="warning")
    with (
        uvicorn_running(config) as server,
        httpx.Client(base_url=base_url(server), timeout=20) as client,
    ):
        yield client


def test_the_studio_picks_a_list_and_answers_no_500_for_a_bad_one(two_list_studio):
    page = two_list_studio.get("/")
    assert page.status_code == 200
    assert '<select name="list"' in page.text
    assert '<option value="daily" selected>' in page.text
    assert '<option value="weekly">' in page.text
    weekly = two_list_studio.get("/", params={"list": "weekly"})
    assert weekly.status_code == 200 and '<option value="weekly" selected>' in weekly.text
    assert two_list_studio.get("/text", params={"list": "weekly"}).status_code == 200
    assert two_list_studio.get("/frame").status_code == 200
    unknown = two_list_studio.get("/", params={"list": "monthly"})
    assert unknown.status_code == 404 and "no list named &#39;monthly&#39;" in unknown.text
    assert '<select name="list"' in unknown.text
    for path in ("/text", "/headers", "/check", "/frame", "/message.eml"):
        assert two_list_studio.get(path, params={"list": "monthly"}).status_code == 404


def test_a_studio_started_on_an_unknown_list_answers_404_with_the_picker(two_list_project):
    app = studio.create_app(None, "monthly")
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    with (
        uvicorn_running(config) as server,
        httpx.Client(base_url=base_url(server), timeout=20) as client,
    ):
        page = client.get("/")
        assert page.status_code == 404 and '<option value="weekly">' in page.text
        assert client.get("/text").status_code == 404
        assert client.get("/", params={"list": "weekly"}).status_code == 200


def test_preview_goes_on_past_a_list_with_nothing_to_show(two_list_project, monkeypatch):
    with smtp_server() as server:
        monkeypatch.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        run("send", "--list", "daily")
    out = two_list_project / "next"
    result = run("preview", "--next", "--out", str(out), code=ExitCode.SELECTION)
    # daily was sent and nothing is new since; weekly's next edition is today's draft.
    assert result.stderr.splitlines() == [
        "error: list daily: no articles for an edition (run `digest fetch` first, or widen "
        "window_hours)"
    ]
    assert (out / "weekly" / "digest.html").exists() and not (out / "daily").exists()
