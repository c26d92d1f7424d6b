"""`digest send` and `digest status` end to end: the run lock with a real second process,
SIGKILL at random moments, DKIM on the bytes the relay received, progress and status."""

from __future__ import annotations

import json
import mailbox
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from email import message_from_bytes, policy

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.cli import app
from digest.send import run_lock
from digest.send.lock import lock_file
from tests.support.cli import (
    child_env,
    load_sample,
    readers_csv,
    run,
    runner,
    sample_settings,
    set_settings,
)
from tests.support.smtpd import smtp_server

READERS = 30


@pytest.fixture
def readers_env(monkeypatch, tmp_path, db_url):
    """A store with today's articles and READERS subscribers, settings in the environment."""
    settings = sample_settings(
        db_url,
        DIGEST_SMTP_CONNECTIONS="2",
        DIGEST_SEND_RETRY_BUDGET="0",
        # On PostgreSQL a killed run's claims are taken over when its lease expires.
        DIGEST_SEND_LEASE="2",
    )
    set_settings(monkeypatch, settings)
    load_sample(readers_csv(tmp_path, READERS))
    return monkeypatch


@pytest.mark.sqlite_only  # on PostgreSQL runs of a list cooperate (tests/test_send_workers.py)
def test_an_overlapping_run_of_the_same_list_sends_nothing(readers_env, tmp_path, db_url):
    with smtp_server() as server:
        readers_env.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        path = lock_file(None, db_url, "daily")
        with run_lock(path, "list daily"):  # this process is the run in progress
            second = subprocess.run(
                [sys.executable, "-m", "digest", "send", "--json"],
                env=child_env(server),
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
            )
            # Nothing was created either: the locked run stopped before the edition.
            run("status", "--json", code=7)
        assert second.returncode == 14, second.stderr
        summary = json.loads(second.stdout)
        assert summary["status"] == "locked" and summary["sent"] == 0
        assert "being sent by another run" in summary["message"]
        assert f"pid {os.getpid()}" in summary["message"]
        assert server.handler.messages == [] and server.handler.connections == 0
        # The lock went with its holder: the next run sends.
        after = json.loads(run("send", "--json").stdout)
        assert after["sent"] == READERS and len(server.handler.messages) == READERS


@pytest.mark.parametrize("seed", [11, 23, 37])
def test_sigkill_at_random_moments_never_sends_twice_and_loses_no_one(readers_env, tmp_path, seed):
    rng = random.Random(seed)
    with smtp_server() as server:
        readers_env.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        for _ in range(3):
            received = len(server.handler.messages)
            if received >= READERS - 2:
                break
            # Kill once the relay has taken a random number more; half the time while the
            # relay withholds the final reply (the sender is in DATA), else right away.
            kill_at = received + rng.randint(1, 6)
            holding = rng.random() < 0.5
            if holding:
                server.handler.hold_after(kill_at)
            child = subprocess.Popen(
                [sys.executable, "-m", "digest", "send", "--json"],
                env=child_env(server),
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                server.handler.wait_for_messages(kill_at, timeout=60)
            finally:
                child.send_signal(signal.SIGKILL)
                child.wait()
                server.handler.release()
        final = json.loads(runner.invoke(app, ["send", "--json"]).stdout)
        status = json.loads(run("status", "--json").stdout)

    ids = Counter(
        message_from_bytes(m.raw, policy=policy.default)["Message-ID"]
        for m in server.handler.messages
    )
    assert max(ids.values()) == 1, f"a Message-ID arrived twice (seed {seed})"
    got = Counter(server.handler.recipients())
    unknown = status["counts"].get("unknown", 0)
    assert status["counts"].get("sent", 0) + unknown == READERS, status["counts"]
    assert len(got) >= READERS - unknown and set(got) <= {
        f"reader{i:03d}@example.org" for i in range(READERS)
    }
    # Every unknown row is one the relay may have; every other reader got it exactly once.
    assert len(got) + unknown >= READERS
    assert final["status"] in ("complete", "incomplete")


def make_key(kind: str, folder) -> tuple:
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ed25519.Ed25519PrivateKey.generate()
    )
    path = folder / f"dkim-{kind}.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path, key


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_dkim_signs_exactly_the_bytes_the_relay_received(readers_env, tmp_path, kind):
    from digest.send import DkimSigner

    path, _ = make_key(kind, tmp_path)
    readers_env.setenv("DIGEST_DKIM_KEY_FILE", str(path))
    readers_env.setenv("DIGEST_DKIM_SELECTOR", "news2026")
    record = (
        DkimSigner.from_file(path, domain="orbital-dispatch.example", selector="news2026")
        .dns_record()
        .encode()
    )
    asked: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return record

    with smtp_server() as server:
        readers_env.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        assert json.loads(run("send", "--json").stdout)["sent"] == READERS
    for item in server.handler.messages:
        assert item.raw.startswith(b"DKIM-Signature: v=1;")
        assert dkim.verify(item.raw, dnsfunc=dns), item.raw[:600]
        header = message_from_bytes(item.raw, policy=policy.compat32)["DKIM-Signature"]
        tags = dict(t.strip().split("=", 1) for t in header.replace("\r\n", "").split(";"))
        assert tags["a"] == f"{kind}-sha256" and tags["d"] == "orbital-dispatch.example"
        assert tags["h"].split(":") == [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
            "feedback-id",
        ]
    assert set(asked) == {b"news2026._domainkey.orbital-dispatch.example."}
    # A changed byte breaks the signature: it covers what was sent, not a re-serialization.
    tampered = server.handler.messages[0].raw.replace(b"Reader", b"Raider", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_without_a_terminal_a_successful_send_writes_nothing_on_stderr(readers_env):
    with smtp_server() as server:
        readers_env.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        result = run("send", "--json")
    assert json.loads(result.stdout)["sent"] == READERS
    assert result.stderr == ""  # cron mails whatever reaches stderr


def test_cron_progress_lines_with_progress_and_the_json_summary(readers_env):
    with smtp_server() as server:
        readers_env.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        result = run("send", "--json", "--progress")
    summary = json.loads(result.stdout)
    assert summary["sent"] == READERS and summary["limit"] is None
    lines = [line for line in result.stderr.splitlines() if line.startswith("progress:")]
    assert [line.split("(")[1].split("%")[0] for line in lines] == [
        str(p) for p in range(10, 101, 10)
    ]
    assert lines[-1].startswith(f"progress: {READERS}/{READERS} (100%)")
    assert "msg/s" in lines[-1]


def test_the_summary_counts_the_bytes_of_the_messages_delivered_only(readers_env):
    with smtp_server() as server:
        server.handler.rcpt_replies["reader003@example.org"] = "550 5.1.1 No such user"
        server.handler.rcpt_replies["reader004@example.org"] = "451 4.7.1 Greylisted"
        # The body of this one goes over the wire, and is refused at the final dot.
        server.handler.data_replies["reader005@example.org"] = "554 5.7.1 Rejected"
        readers_env.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        summary = json.loads(run("send", "--json", code=10).stdout)
    delivered = server.handler.messages
    assert summary["sent"] == len(delivered) == READERS - 3
    assert summary["bytes"] == sum(len(m.raw) for m in delivered) > 0


def test_status_shows_counts_and_the_latest_errors(readers_env):
    with smtp_server() as server:
        server.handler.rcpt_replies["reader003@example.org"] = "550 5.1.1 No such user"
        server.handler.rcpt_replies["reader004@example.org"] = "451 4.7.1 Greylisted"
        readers_env.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        summary = json.loads(run("send", "--json", code=10).stdout)
    assert summary["suppressed"] == 1
    status = json.loads(run("status", "--json").stdout)
    assert status["counts"] == {"sent": READERS - 2, "failed": 1, "deferred": 1}
    assert status["status"] == "sending" and status["running"] is None
    errors = {e["email"]: (e["state"], e["code"], e["reply"]) for e in status["errors"]}
    assert errors == {
        "reader003@example.org": ("failed", 550, "5.1.1 No such user"),
        "reader004@example.org": ("deferred", 451, "4.7.1 Greylisted"),
    }
    text = run("status", "--edition", status["edition"]).stdout
    assert "deferred" in text and "reader004@example.org: 451 4.7.1 Greylisted" in text
    run("status", "--edition", "1999-01-01", code=7)


def test_the_outbox_stores_lf_line_endings_and_its_dkim_signatures_still_verify(
    readers_env, tmp_path
):
    from digest.send import DkimSigner

    path, _ = make_key("rsa", tmp_path)
    readers_env.setenv("DIGEST_DKIM_KEY_FILE", str(path))
    readers_env.setenv("DIGEST_DKIM_SELECTOR", "news2026")
    record = (
        DkimSigner.from_file(path, domain="orbital-dispatch.example", selector="news2026")
        .dns_record()
        .encode()
    )
    assert json.loads(run("send", "--json").stdout)["sent"] == READERS
    box = mailbox.Maildir(tmp_path / "outbox", create=False)
    stored = [box.get_bytes(key) for key in box.iterkeys()]
    assert len(stored) == READERS
    for raw in stored:
        # A mail client shows a stored CR as ^M at the end of every header line.
        assert b"\r" not in raw and raw.count(b"\n") > 20
        message = message_from_bytes(raw, policy=policy.default)
        assert message["To"].addresses[0].addr_spec.startswith("reader")
        assert message.get_content_type() == "multipart/alternative"
        assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record)
    assert not dkim.verify(
        stored[0].replace(b"Reader", b"Raider", 1), dnsfunc=lambda name, timeout=5: record
    )


def test_the_smtp_path_still_sends_crlf_line_endings(readers_env):
    with smtp_server() as server:
        readers_env.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        assert json.loads(run("send", "--json").stdout)["sent"] == READERS
    for item in server.handler.messages:
        # The bytes of DATA as received (dot-unstuffed): every line ends in CRLF.
        assert item.raw.count(b"\r\n") == item.raw.count(b"\n") > 20
        assert b"\r" not in item.raw.replace(b"\r\n", b"")
        message = message_from_bytes(item.raw, policy=policy.default)
        assert message.get_content_type() == "multipart/alternative"
