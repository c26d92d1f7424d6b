"""The subscriber, lists and bounces commands end to end, through typer's CliRunner, on a real
SQLite file."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest

from tests.support.cli import run
from tests.support.values import DATA, EXAMPLE_CSV


@pytest.fixture
def subscribed(sample_env):
    """The sample newsletter's store with the example subscribers, nothing fetched."""
    run("init")
    run("subscribers", "import", str(EXAMPLE_CSV))
    return sample_env


def listed(*args: str) -> list[dict]:
    return [
        json.loads(line)
        for line in run("subscribers", "list", "--format", "json", *args).stdout.splitlines()
    ]


def test_every_format_of_list(subscribed):
    rows = listed()
    assert len(rows) == 6 and all({"email", "status"} <= set(r) for r in rows)
    table = run("subscribers", "list").stdout
    assert "┃ email" in table and "6 shown" in table
    parsed = list(csv.DictReader(io.StringIO(run("subscribers", "list", "-f", "csv").stdout)))
    assert {r["email"] for r in parsed} == {r["email"] for r in rows}
    active = listed("--status", "active")
    assert len(active) == 5


def test_unsubscribe_resubscribe_prefs_and_show(subscribed):
    run("subscribers", "unsubscribe", "grace.hopper@example.com", "--list", "daily")
    shown = json.loads(run("subscribers", "show", "grace.hopper@example.com", "--json").stdout)
    assert shown["status"] == "unsubscribed"
    assert shown["memberships"] == {"daily": {"state": "unsubscribed", "paused": False}}
    run("subscribers", "resubscribe", "grace.hopper@example.com")
    run("subscribers", "prefs", "grace.hopper@example.com", "--sections", "launch-pad", "--pause")
    shown = json.loads(run("subscribers", "show", "grace.hopper@example.com", "-f", "json").stdout)
    assert shown["status"] == "active" and shown["subscriptions"] == {"daily": ["launch-pad"]}
    assert shown["memberships"]["daily"] == {"state": "active", "paused": True}
    counts = json.loads(run("lists", "list", "-f", "json").stdout)
    assert (counts["active"], counts["paused"]) == (4, 1)
    run("subscribers", "prefs", "grace.hopper@example.com", "--sections", "all", "--resume")
    text = run("subscribers", "show", "grace.hopper@example.com").stdout
    assert "daily (active): all sections" in text and "consent: import:example.csv" in text
    missing = run("subscribers", "prefs", "nobody@example.com", "--pause", code=6)
    assert "no subscriber nobody@example.com" in missing.stderr


def test_erase_keeps_only_a_hash_and_import_respects_it(subscribed):
    run("subscribers", "remove", "ada.lovelace@example.com", "--erase")
    assert "ada.lovelace@example.com" not in run("subscribers", "list", "-f", "csv").stdout
    (subscribed / "back.csv").write_text(
        "email,name\nnew@example.com,N\nAda.Lovelace@example.com,A\n"
    )
    result = run("subscribers", "import", "back.csv", code=5)
    assert (
        "back.csv:3: Ada.Lovelace@example.com is on the suppression list (erased)" in result.stderr
    )
    assert "1 added" in result.stdout
    run("subscribers", "import", "back.csv", "--force")
    assert any(r["email"] == "Ada.Lovelace@example.com" for r in listed())


def test_export_import_round_trip_in_both_formats(subscribed, tmp_path, monkeypatch, make_db_url):
    run("subscribers", "unsubscribe", "yuri@example.org")
    run("subscribers", "prefs", "valentina@example.net", "--pause")
    before = {r["email"]: r for r in listed()}
    for fmt, name in (("csv", "all.csv"), ("json", "all.jsonl")):
        run("subscribers", "export", "-f", fmt, "--out", name)
        monkeypatch.setenv("DIGEST_DATABASE_URL", make_db_url(name + ".db"))
        result = run("subscribers", "import", name, "--json")
        assert json.loads(result.stdout)["added"] == 6
        assert {r["email"]: r for r in listed()} == before
        again = json.loads(run("subscribers", "import", name, "--json").stdout)
        assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, 6)


def test_import_reports_every_bad_row_and_commits_the_rest(subscribed):
    (subscribed / "mixed.csv").write_text(
        "email,name,lists,sections,status\n"
        "one@example.com,One,daily,,\n"
        "not-an-email,Bad,daily,,\n"
        "two@example.com,Two,weekly,,\n"
        "three@example.com,Three,daily,nope,\n"
        "four@example.com,Four,daily,,sleeping\n"
        "five@example.com,Five,daily,launch-pad,active\n"
    )
    dry = run("subscribers", "import", "mixed.csv", "--dry-run", "--json", code=5)
    assert json.loads(dry.stdout)["added"] == 2 and len(listed()) == 6
    result = run("subscribers", "import", "mixed.csv", code=5)
    lines = [line.split(": ", 1)[0] for line in result.stderr.splitlines()]
    assert lines == ["mixed.csv:3", "mixed.csv:4", "mixed.csv:5", "mixed.csv:6"]
    assert "unknown list 'weekly'" in result.stderr and "unknown status 'sleeping'" in result.stderr
    assert {r["email"] for r in listed()} >= {"one@example.com", "five@example.com"}
    assert len(listed()) == 8


def test_lists_list_and_show(subscribed):
    rows = [json.loads(line) for line in run("lists", "list", "-f", "json").stdout.splitlines()]
    assert rows == [
        {
            "name": "daily",
            "title": "Orbital Dispatch Daily",
            "sender": "Orbital Dispatch <newsletter@orbital-dispatch.example>",
            "active": 5,
            "paused": 0,
            "pending": 0,
            "unsubscribed": 1,
            "bounced": 0,
            "complained": 0,
        }
    ]
    shown = json.loads(run("lists", "show", "daily", "-f", "json").stdout)
    assert shown["sections"][0] == "internet-space" and shown["timezone"] == "America/New_York"
    assert "Orbital Dispatch Daily" in run("lists", "show", "daily").stdout
    assert "no list named 'weekly'" in run("lists", "show", "weekly", code=2).stderr


def test_bounces_process_command(subscribed, tmp_path):
    run("subscribers", "add", "r@p351355.pool.example.ne.jp")
    box = tmp_path / "returned"
    box.mkdir()
    for name in ("sisimai/lhost-postfix-01.eml", "sisimai/rfc3834-01.eml"):
        shutil.copy(DATA / "bounces" / name, box / name.split("/")[1])
    summary = json.loads(run("bounces", "process", str(box), "--json").stdout)
    assert summary["messages"] == 2 and summary["suppressed"] == 1
    assert summary["reports"] == {"hard": 1, "auto-reply": 1}
    shown = json.loads(run("subscribers", "show", "r@p351355.pool.example.ne.jp", "--json").stdout)
    assert shown["status"] == "bounced" and shown["suppressed"] == "hard-bounce"
    assert "seen before 1" in run("bounces", "process", str(box)).stdout
    missing = run("bounces", "process", str(tmp_path / "nope"), code=6)
    assert "no such Maildir" in missing.stderr
