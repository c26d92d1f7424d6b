"""`digest send` over SMTP, against a real aiosmtpd server on loopback."""

from __future__ import annotations

import json
from email import message_from_bytes, policy

import pytest

from tests.support.cli import run
from tests.support.smtpd import free_port, smtp_server


@pytest.fixture
def smtp_env(loaded, monkeypatch):
    """The sample newsletter loaded, and two connections to the relay a test names."""
    monkeypatch.setenv("DIGEST_SMTP_CONNECTIONS", "2")
    # A 4xx is left for the next run at once (the in-run retries have tests of their own).
    monkeypatch.setenv("DIGEST_SEND_RETRY_BUDGET", "0")
    return monkeypatch


def test_send_over_smtp_once_per_subscriber_and_never_twice(smtp_env):
    with smtp_server() as server:
        smtp_env.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        first = json.loads(run("send", "--json").stdout)
        assert (first["status"], first["sent"], first["transport"]) == ("complete", 5, "smtp")
        received = server.handler.messages
        assert sorted(r.rcpt_tos[0] for r in received) == [
            "ada.lovelace@example.com",
            "grace.hopper@example.com",
            "margaret.hamilton@example.com",
            "valentina@example.net",
            "yuri@example.org",
        ]
        assert server.handler.connections <= 2
        for item in received:
            assert item.mail_from == "newsletter@orbital-dispatch.example"
            message = message_from_bytes(item.raw, policy=policy.default)
            assert message["To"].addresses[0].addr_spec == item.rcpt_tos[0]
            assert message.get_content_type() == "multipart/alternative"
        second = json.loads(run("send", "--json").stdout)
        assert second["sent"] == 0 and second["already_sent"] == 5
        assert len(server.handler.messages) == 5


def test_relay_refusing_the_connection_stops_and_a_later_run_resumes(smtp_env):
    smtp_env.setenv("DIGEST_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    result = run("send", "--json", code=12)
    summary = json.loads(result.stdout)
    assert summary["status"] == "stopped" and "refused the connection" in summary["stopped"]
    assert summary["sent"] == 0
    with smtp_server() as server:
        smtp_env.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        resumed = json.loads(run("send", "--json").stdout)
        assert resumed["sent"] == 5 and len(server.handler.messages) == 5


def test_temporary_and_permanent_refusals_are_recorded(smtp_env):
    with smtp_server() as server:
        server.handler.rcpt_replies["ada.lovelace@example.com"] = "450 4.2.1 Mailbox busy"
        server.handler.rcpt_replies["yuri@example.org"] = "550 5.1.1 No such user"
        smtp_env.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        summary = json.loads(run("send", "--json", code=10).stdout)
        assert (summary["sent"], summary["deferred"], summary["failed"]) == (3, 1, 1)
        assert summary["status"] == "incomplete"
        del server.handler.rcpt_replies["ada.lovelace@example.com"]
        retry = json.loads(run("send", "--json", code=0).stdout)
        assert retry["sent"] == 1 and retry["already_sent"] == 3
        assert server.handler.recipients().count("ada.lovelace@example.com") == 1


def test_a_drop_after_data_is_unknown_and_not_a_success(smtp_env):
    with smtp_server() as server:
        server.handler.drop_after_data.add("grace.hopper@example.com")
        smtp_env.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        summary = json.loads(run("send", "--json", code=10).stdout)
        assert (summary["status"], summary["sent"], summary["unknown"]) == ("incomplete", 4, 1)
        server.handler.drop_after_data.clear()
        again = json.loads(run("send", "--json", code=0).stdout)
        assert again["sent"] == 0  # unknown is not resent without --resend-unknown
        assert server.handler.recipients().count("grace.hopper@example.com") == 1


def test_a_non_ascii_local_part_goes_with_smtputf8_or_fails_alone_with_the_reason(smtp_env):
    added = run("subscribers", "add", "josé@example.com")
    assert "SMTPUTF8" in added.stderr
    with smtp_server(enable_SMTPUTF8=False) as server:
        smtp_env.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        summary = json.loads(run("send", "--json", code=11).stdout)
        assert (summary["sent"], summary["failed"]) == (5, 1)
        assert "josé@example.com" not in server.handler.recipients()
        status = json.loads(run("status", "--json").stdout)
        assert "needs SMTPUTF8, which the relay does not offer" in json.dumps(
            status, ensure_ascii=False
        )


def test_a_relay_offering_smtputf8_gets_the_non_ascii_address(smtp_env):
    run("subscribers", "add", "josé@example.com", "--name", "José")
    with smtp_server(enable_SMTPUTF8=True) as server:
        smtp_env.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        summary = json.loads(run("send", "--json").stdout)
        assert (summary["sent"], summary["failed"]) == (6, 0)
        (item,) = [r for r in server.handler.messages if r.rcpt_tos == ("josé@example.com",)]
        assert "<josé@example.com>".encode() in item.raw.split(b"\r\n\r\n")[0]


def test_a_dry_run_counts_what_the_real_send_then_sends(smtp_env):
    with smtp_server() as server:
        smtp_env.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        # A fresh edition: everyone.
        dry = json.loads(run("send", "--dry-run", "--json").stdout)
        real = json.loads(run("send", "--json").stdout)
        assert (dry["status"], dry["sent"], dry["skipped"]) == ("dry-run", 5, 0)
        assert (real["sent"], real["skipped"]) == (5, 0)
        # The edition sent: nothing more, by either.
        dry = json.loads(run("send", "--dry-run", "--json").stdout)
        real = json.loads(run("send", "--json").stdout)
        assert (dry["sent"], dry["already_sent"]) == (real["sent"], real["already_sent"]) == (0, 5)
        assert len(server.handler.messages) == 5


def test_a_dry_run_skips_whom_the_real_send_skips_once_the_ledger_is_filled(smtp_env):
    # A first run finds no relay: the edition's ledger is filled, nothing is sent.
    smtp_env.setenv("DIGEST_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    assert json.loads(run("send", "--json", code=12).stdout)["sent"] == 0
    # Then a reader unsubscribes and another pauses; a third is greylisted by the relay.
    run("subscribers", "unsubscribe", "ada.lovelace@example.com")
    run("subscribers", "prefs", "yuri@example.org", "--pause")
    with smtp_server() as server:
        server.handler.rcpt_replies["grace.hopper@example.com"] = "451 4.7.1 Greylisted"
        smtp_env.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        dry = json.loads(run("send", "--dry-run", "--json").stdout)
        real = json.loads(run("send", "--json", code=10).stdout)
        # The relay's answer is the one thing a dry run cannot know: it counts grace as sent.
        assert (dry["sent"], dry["skipped"]) == (3, 2)
        assert (real["sent"], real["deferred"], real["skipped"]) == (2, 1, 2)
        # What is left: the greylisted reader, once the relay takes it.
        server.handler.rcpt_replies.clear()
        dry = json.loads(run("send", "--dry-run", "--json").stdout)
        real = json.loads(run("send", "--json").stdout)
        assert (dry["sent"], dry["already_sent"]) == (real["sent"], real["already_sent"]) == (1, 2)
        assert len(server.handler.messages) == 3
