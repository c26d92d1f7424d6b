"""A reader's own time zone: set, shown and cleared with `subscribers prefs`, read from an
import's ``timezone`` column and written by `subscribers export`, on a real store (both
engines). Never inferred: a reader without one gets each list's zone."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.support.cli import run, shown

GRACE = "grace.hopper@example.com"


def test_prefs_sets_shows_and_clears_a_readers_time_zone(subscribed):
    assert shown(GRACE)["timezone"] is None  # never inferred
    result = run("subscribers", "prefs", GRACE, "--timezone", "Europe/Oslo")
    assert result.stdout.strip() == f"{GRACE} timezone: Europe/Oslo"
    assert shown(GRACE)["timezone"] == "Europe/Oslo"
    assert "  timezone: Europe/Oslo" in run("subscribers", "show", GRACE).stdout
    # With other preferences in the same command, both change.
    run("subscribers", "prefs", GRACE, "--timezone", "Asia/Tokyo", "--pause")
    data = shown(GRACE)
    assert data["timezone"] == "Asia/Tokyo" and data["memberships"]["daily"]["paused"]
    cleared = run("subscribers", "prefs", GRACE, "--timezone", "")
    assert "none (each list its own)" in cleared.stdout
    assert shown(GRACE)["timezone"] is None
    assert "timezone" not in run("subscribers", "show", GRACE).stdout


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "Europe/Oslo\r\nX"])
def test_an_unknown_time_zone_is_one_clear_line_and_changes_nothing(subscribed, zone):
    run("subscribers", "prefs", GRACE, "--timezone", "Europe/Oslo")
    result = run("subscribers", "prefs", GRACE, "--timezone", zone, "--pause", code=6)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "is not an IANA time zone such as Europe/Oslo" in result.stderr
    assert "\r" not in result.stderr
    data = shown(GRACE)
    assert data["timezone"] == "Europe/Oslo" and not data["memberships"]["daily"]["paused"]


def test_import_reads_the_timezone_column_names_a_bad_row_and_keeps_the_good_ones(subscribed):
    (subscribed / "zones.csv").write_text(
        "email,lists,timezone\n"
        "tokyo@example.org,daily,Asia/Tokyo\n"
        "nowhere@example.org,daily,Atlantis/Capital\n"
        "home@example.org,daily,\n"
        "la@example.org,daily, America/Los_Angeles \n"
    )
    result = run("subscribers", "import", "zones.csv", code=5)
    assert result.stderr.strip() == (
        "zones.csv:3: timezone 'Atlantis/Capital' is not an IANA time zone such as Europe/Oslo"
    )
    assert shown("tokyo@example.org")["timezone"] == "Asia/Tokyo"
    assert shown("home@example.org")["timezone"] is None
    assert shown("la@example.org")["timezone"] == "America/Los_Angeles"
    assert run("subscribers", "show", "nowhere@example.org", code=6)


def test_an_update_import_changes_a_zone_the_file_names_and_leaves_an_empty_cell_alone(
    subscribed,
):
    (subscribed / "first.csv").write_text(
        "email,name,lists,timezone\n"
        "a@example.org,A,daily,Europe/Oslo\n"
        "b@example.org,B,daily,Asia/Tokyo\n"
    )
    run("subscribers", "import", "first.csv")
    (subscribed / "moved.csv").write_text(
        "email,name,lists,timezone\na@example.org,A,daily,America/Los_Angeles\nb@example.org,B,daily,\n"
    )
    result = json.loads(run("subscribers", "import", "moved.csv", "--update", "--json").stdout)
    assert result["changed"] == [
        {
            "email": "a@example.org",
            "line": 2,
            "changes": ["timezone: Europe/Oslo -> America/Los_Angeles"],
        }
    ]
    assert shown("a@example.org")["timezone"] == "America/Los_Angeles"
    assert shown("b@example.org")["timezone"] == "Asia/Tokyo"


def test_export_writes_the_timezone_column_and_imports_back(subscribed, monkeypatch, make_db_url):
    run("subscribers", "prefs", GRACE, "--timezone", "Pacific/Auckland")
    exported = run("subscribers", "export").stdout
    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(exported))}
    assert rows[GRACE]["timezone"] == "Pacific/Auckland"
    assert rows["yuri@example.org"]["timezone"] == ""
    jsonl = run("subscribers", "export", "-f", "json").stdout
    assert {"email": GRACE, "timezone": "Pacific/Auckland"}.items() <= next(
        json.loads(line) for line in jsonl.splitlines() if GRACE in line
    ).items()
    (subscribed / "all.csv").write_text(exported)
    monkeypatch.setenv("DIGEST_DATABASE_URL", make_db_url("copy.db"))
    run("subscribers", "import", "all.csv")
    assert shown(GRACE)["timezone"] == "Pacific/Auckland"
    assert run("subscribers", "export").stdout == exported
