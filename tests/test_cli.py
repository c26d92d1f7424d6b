"""The CLI end to end, through typer's CliRunner, on a real SQLite file and a real Maildir.

These tests run the three jobs as their users do: an operator manages subscribers, an editor
previews, cron sends (into the local outbox here; over SMTP in test_cli_smtp.py).
"""

from __future__ import annotations

import json
import mailbox
import re
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from typer.main import get_command

from digest import pipeline
from digest.audience.tokens import read_token
from digest.cli import app
from digest.config import load_settings
from tests.support.cli import load_sample, readers_csv, run, runner


def outbox_raw(tmp_path: Path) -> list[bytes]:
    box = mailbox.Maildir(tmp_path / "outbox", create=False)
    return [box.get_bytes(key) for key in box.iterkeys()]


def outbox_messages(tmp_path: Path):
    return [message_from_bytes(raw, policy=policy.default) for raw in outbox_raw(tmp_path)]


def test_every_command_has_help_text():
    def walk(command, path: str):
        assert command.help or command.short_help, f"{path} has no help text"
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(get_command(app), "digest")


def test_init_writes_a_secret_once(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGEST_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    run("init")
    first = (tmp_path / ".env").read_text()
    assert first.startswith("DIGEST_SECRET_KEY=") and len(first.strip()) > 50
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0
    run("init")
    assert (tmp_path / ".env").read_text() == first
    assert (tmp_path / "store.db").exists()


def test_send_without_secret_is_one_clear_line(sample_env, monkeypatch):
    monkeypatch.delenv("DIGEST_SECRET_KEY")
    result = run("send", code=2)
    assert result.stderr.strip().splitlines() == [
        "error: DIGEST_SECRET_KEY is not set (run `digest init` to write one into .env, "
        "or set it in the environment)"
    ]


def test_daily_send_into_the_outbox_and_a_second_run_sends_nothing(loaded):
    first = json.loads(run("send", "--json").stdout)
    assert first["status"] == "complete"
    assert first["recipients"] == 5 and first["sent"] == 5 and first["failed"] == 0
    assert set(first) >= {
        "list",
        "edition",
        "status",
        "recipients",
        "sent",
        "failed",
        "deferred",
        "unknown",
    }
    assert len(outbox_messages(loaded)) == 5
    second = json.loads(run("send", "--json").stdout)
    assert second["sent"] == 0 and second["already_sent"] == 5
    assert len(outbox_messages(loaded)) == 5


def test_each_subscriber_gets_exactly_their_sections(loaded):
    run("send")
    by_rcpt = {m["To"].addresses[0].addr_spec: m for m in outbox_messages(loaded)}
    assert "former.reader@example.com" not in by_rcpt  # unsubscribed in the CSV
    grace = by_rcpt["grace.hopper@example.com"].get_body(("plain",)).get_content()
    assert "MILITARY SPACE" in grace.upper() and "MISSILE DEFENSE" in grace.upper()
    assert "LAUNCH PAD" not in grace.upper() and "INTERNET SPACE" not in grace.upper()
    valentina = by_rcpt["valentina@example.net"].get_body(("html",)).get_content()
    assert "Launch Pad" in valentina and "Military Space" not in valentina
    ada = by_rcpt["ada.lovelace@example.com"].get_body(("plain",)).get_content().upper()
    assert all(
        t in ada
        for t in (
            "INTERNET SPACE",
            "MILITARY SPACE",
            "DRONE SPACE",
            "MISSILE DEFENSE",
            "LAUNCH PAD",
        )
    )


def test_messages_are_multipart_alternative_with_one_click_unsubscribe(loaded):
    run("send")
    for raw in outbox_raw(loaded):
        message = message_from_bytes(raw, policy=policy.default)
        assert message.get_content_type() == "multipart/alternative"
        parts = [p.get_content_type() for p in message.iter_parts()]
        assert parts == ["text/plain", "text/html"]
        assert all(p.get_content_charset() == "utf-8" for p in message.iter_parts())
        raw_headers = raw.split(b"\n\n", 1)[0].decode()  # the outbox stores LF line endings
        unsub = [line for line in raw_headers.split("\n") if line.startswith("List-Unsubscribe:")]
        assert len(unsub) == 1 and "=?" not in unsub[0]
        assert "<https://news.example.com/u/" in unsub[0] and "mailto:" in unsub[0]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_unsubscribed_reader_gets_nothing(loaded):
    run("subscribers", "unsubscribe", "ada.lovelace@example.com")
    summary = json.loads(run("send", "--json").stdout)
    assert summary["sent"] == 4
    recipients = {m["To"].addresses[0].addr_spec for m in outbox_messages(loaded)}
    assert "ada.lovelace@example.com" not in recipients


def test_dry_run_composes_everything_and_sends_nothing(loaded):
    summary = json.loads(run("send", "--dry-run", "--json").stdout)
    assert summary["status"] == "dry-run" and summary["recipients"] == 5
    assert summary["bytes"] > 5 * 5000
    assert not (loaded / "outbox").exists() or outbox_messages(loaded) == []
    real = json.loads(run("send", "--json").stdout)
    assert real["sent"] == 5


def test_nothing_new_skips_the_edition(sample_env):
    run("init")
    run("subscribers", "add", "solo@example.com")
    result = run("send")
    assert "nothing new" in result.stdout
    assert not (sample_env / "outbox").exists()


def test_preview_writes_html_text_and_eml(loaded):
    result = run("preview", "--out", "pv", "--subscriber", "grace.hopper@example.com")
    for name in ("digest.html", "digest.txt", "digest.eml"):
        assert str((loaded / "pv" / name).resolve()) in result.stdout
    eml = message_from_bytes((loaded / "pv" / "digest.eml").read_bytes(), policy=policy.default)
    assert eml["To"].addresses[0].addr_spec == "grace.hopper@example.com"
    assert "Launch Pad" not in (loaded / "pv" / "digest.html").read_text()
    run("preview", "--out", "sample")
    assert "Launch Pad" in (loaded / "sample" / "digest.html").read_text()
    assert not (loaded / "outbox").exists()


def test_preview_files_carry_links_that_act_on_nothing(loaded):
    run("preview", "--out", "pv", "--subscriber", "grace.hopper@example.com")
    eml = message_from_bytes((loaded / "pv" / "digest.eml").read_bytes(), policy=policy.default)
    token = re.search(r"/u/([^>]+)>", str(eml["List-Unsubscribe"])).group(1)
    settings = load_settings()
    assert read_token(settings.require_secret(), token, "unsubscribe") is None
    preview_key = pipeline.preview_settings(settings).require_secret()
    assert read_token(preview_key, token, "unsubscribe") is not None


def test_subscriber_management_round_trip(sample_env):
    run("init")
    run(
        "subscribers",
        "add",
        "Mae.Jemison@Example.com",
        "--name",
        "Mae Jemison",
        "--sections",
        "launch-pad,drone-space",
    )
    dup = run("subscribers", "add", "mae.jemison@example.com", code=6)
    assert "already a subscriber" in dup.stderr
    shown = json.loads(run("subscribers", "show", "mae.jemison@example.com", "--json").stdout)
    assert shown["email"] == "Mae.Jemison@example.com" and shown["status"] == "active"
    assert shown["subscriptions"] == {"daily": ["drone-space", "launch-pad"]}
    run("subscribers", "unsubscribe", "mae.jemison@example.com")
    left = json.loads(run("subscribers", "show", "mae.jemison@example.com", "--json").stdout)
    assert left == shown | {
        "status": "unsubscribed",
        "lists": ["daily:unsubscribed"],
        "memberships": {"daily": {"state": "unsubscribed", "paused": False}},
    }
    listed = [
        json.loads(line)
        for line in run("subscribers", "list", "--format", "json").stdout.splitlines()
    ]
    assert [(s["email"], s["status"]) for s in listed] == [
        ("Mae.Jemison@example.com", "unsubscribed")
    ]
    run("subscribers", "export", "--out", "all.csv")
    run("subscribers", "remove", "mae.jemison@example.com")
    assert run("subscribers", "list", "--format", "json").stdout == ""
    run("subscribers", "import", "all.csv")
    again = json.loads(run("subscribers", "show", "mae.jemison@example.com", "--json").stdout)
    assert again == left


@pytest.mark.parametrize(
    "args,message",
    [
        (("not-an-address",), "is not a valid email address"),
        (("x@example.com", "--name", "Eve\r\nBcc: victim@example.com"), "line break"),
        (("x@example.com", "--sections", "nope"), "unknown section 'nope'"),
    ],
)
def test_bad_subscriber_input_is_one_line_and_stores_nothing(sample_env, args, message):
    run("init")
    result = run("subscribers", "add", *args, code=6)
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert run("subscribers", "list", "--format", "json").stdout == ""


def test_import_with_bad_rows_keeps_good_ones_and_fails(sample_env):
    run("init")
    (sample_env / "in.csv").write_text(
        "email,name\ngood@example.com,G\nbad-address,B\nalso.good@example.com,A\n"
    )
    result = run("subscribers", "import", "in.csv", code=5)
    assert "in.csv:3:" in result.stderr and "not a valid email address" in result.stderr
    assert "2 added" in result.stdout
    emails = run("subscribers", "list", "--format", "csv").stdout
    assert "good@example.com" in emails and "also.good@example.com" in emails
    dry = run("subscribers", "import", "in.csv", "--dry-run", "--json", code=5)
    assert json.loads(dry.stdout)["added"] == 0


def test_verbose_shows_the_traceback(sample_env, monkeypatch):
    monkeypatch.setenv("DIGEST_CONFIG", str(sample_env / "missing.toml"))
    quiet = run("send", code=2)
    assert "Traceback" not in quiet.stderr and "not found" in quiet.stderr
    loud = runner.invoke(app, ["--verbose", "send"])
    assert loud.exit_code == 2 and "Traceback" in loud.stderr


def test_a_non_ascii_local_part_is_added_with_a_warning_and_written_to_the_outbox(loaded):
    added = run("subscribers", "add", "josé@example.com")
    assert "needs a relay that offers SMTPUTF8" in added.stderr
    summary = json.loads(run("send", "--json").stdout)
    assert (summary["sent"], summary["failed"]) == (6, 0)
    to = [str(m["To"]) for m in outbox_messages(loaded)]
    assert "josé@example.com" in to


def test_an_internationalized_domain_is_delivered_in_idna_form(loaded):
    run("subscribers", "add", "leser@Bücher.example", "--name", "Leser")
    summary = json.loads(run("send", "--json").stdout)
    assert (summary["sent"], summary["failed"]) == (6, 0)
    assert "leser@xn--bcher-kva.example" in run("subscribers", "list", "-f", "csv").stdout
    assert "Leser <leser@xn--bcher-kva.example>" in [str(m["To"]) for m in outbox_messages(loaded)]


def test_sharp_s_and_ss_are_two_subscribers_while_case_still_matches(sample_env):
    run("init")
    run("subscribers", "add", "straße@example.com")
    run("subscribers", "add", "strasse@example.com")
    assert "already a subscriber" in run("subscribers", "add", "STRASSE@example.com", code=6).stderr
    listed = run("subscribers", "list", "--format", "json").stdout.splitlines()
    assert sorted(json.loads(line)["email"] for line in listed) == [
        "strasse@example.com",
        "straße@example.com",
    ]


def test_bidirectional_overrides_and_c1_controls_never_reach_the_terminal(sample_env, db_url):
    from sqlalchemy import create_engine, text

    run("init")
    refused = run("subscribers", "add", "eve@example.com", "--name", "Eve\u202egnp.exe", code=6)
    assert "\u202e" not in refused.stderr
    run("subscribers", "add", "old@example.com", "--name", "Old")
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:  # a name stored before names were checked
        conn.execute(text("UPDATE subscribers SET name = :n"), {"n": "Old\u202e\x9b31m"})
    engine.dispose()
    for args in (
        ("list",),
        ("list", "-f", "json"),
        ("show", "old@example.com"),
        ("show", "old@example.com", "--json"),
    ):
        shown = run("subscribers", *args).stdout
        assert "Old" in shown and "\u202e" not in shown and "\x9b" not in shown


def test_one_recipient_is_said_in_the_singular(sample_env):
    load_sample(readers_csv(sample_env, 1))
    dry = run("send", "--dry-run").stdout
    assert "1 recipient, 1 message composed (1 variant," in dry, dry
    run("send")
    status = run("status").stdout
    assert ": complete, 1 recipient\n" in status, status
