"""A list with ``deliver_local``: each reader gets the edition at send_at on their own clock,
through the CLI with DIGEST_NOW, on a real store (both engines) and a recording SMTP server.
What `send`, `send --dry-run` and `status` say while readers wait, a zone changed while an
edition is in flight, two editions in flight in one run, and the same readers without
``deliver_local``."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.support.cli import run, sample_settings, set_settings
from tests.support.schedules import at, daily_and_weekly_config, new_article
from tests.support.smtpd import smtp_server

TOKYO, OSLO, LA = "tokyo@example.org", "oslo@example.org", "la@example.org"


@pytest.fixture
def zoned(monkeypatch, tmp_path, db_url, request):
    """Three daily readers (Tokyo, the list's Oslo, Los Angeles), one article, and a recording
    relay; ``deliver_local`` as the test's parameter (default on)."""
    local = getattr(request, "param", True)
    config = daily_and_weekly_config(tmp_path, "Europe/Oslo", deliver_local=local)
    set_settings(
        monkeypatch,
        sample_settings(db_url, DIGEST_CONFIG=config, DIGEST_SEND_RETRY_BUDGET="0"),
    )
    at(monkeypatch, datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    (tmp_path / "readers.csv").write_text(
        f"email,lists,timezone\n{TOKYO},daily,Asia/Tokyo\n{OSLO},daily,\n"
        f"{LA},daily,America/Los_Angeles\n"
    )
    run("init")
    run("subscribers", "import", str(tmp_path / "readers.csv"))
    new_article(tmp_path, 1)
    with smtp_server() as server:
        monkeypatch.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        yield server


def send_daily(monkeypatch, moment: datetime) -> dict:
    at(monkeypatch, moment)
    return json.loads(run("send", "--list", "daily", "--json").stdout)


def rcpts(server, since: int = 0) -> list[str]:
    return sorted(r for m in server.handler.messages[since:] for r in m.rcpt_tos)


def test_each_reader_gets_the_edition_at_send_at_on_their_own_clock(zoned, monkeypatch):
    # 12:00 UTC: Tokyo's and Oslo's 06:15 of 30 November have passed, Los Angeles's not.
    at(monkeypatch, datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    ahead = json.loads(run("send", "--list", "daily", "--dry-run", "--json").stdout)
    assert (ahead["sent"], ahead["waiting"]) == (2, 1)
    assert ahead["next_due"] == "2026-11-30 14:15 UTC (06:15 America/Los_Angeles)"
    assert zoned.handler.messages == []
    first = send_daily(monkeypatch, datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    assert (first["edition"], first["status"], first["sent"]) == ("2026-11-30", "complete", 2)
    assert rcpts(zoned) == [OSLO, TOKYO]
    assert first["waiting"] == 1
    assert first["next_due"] == "2026-11-30 14:15 UTC (06:15 America/Los_Angeles)"
    status = json.loads(run("status", "--list", "daily", "--json").stdout)
    assert (status["status"], status["waiting"]) == ("sending", 1)
    text = run("status", "--list", "daily").stdout
    assert "1 waiting for their zone's send time; the next due 2026-11-30 14:15 UTC" in text
    # An hour on: nothing to send, and the run says who waits for what.
    idle = send_daily(monkeypatch, datetime(2026, 11, 30, 13, 0, tzinfo=UTC))
    assert idle["status"] == "not-due" and idle["sent"] == 0
    assert idle["message"] == (
        "not due: 1 reader(s) wait for 06:15 in their zone; the next are due "
        "2026-11-30 14:15 UTC (06:15 America/Los_Angeles)"
    )
    dry = json.loads(run("send", "--list", "daily", "--dry-run", "--json").stdout)
    assert (dry["status"], dry["sent"], dry["waiting"]) == ("dry-run", 0, 1)
    assert "1 reader(s) wait for their zone's send time" in dry["message"]
    assert len(zoned.handler.messages) == 2
    # Los Angeles's 06:15: the last reader, and the edition is complete.
    last = send_daily(monkeypatch, datetime(2026, 11, 30, 14, 15, tzinfo=UTC))
    assert (last["status"], last["sent"], last["waiting"]) == ("complete", 1, 0)
    assert rcpts(zoned, 2) == [LA]
    status = json.loads(run("status", "--list", "daily", "--json").stdout)
    assert (status["status"], status["counts"]) == ("complete", {"sent": 3})
    after = send_daily(monkeypatch, datetime(2026, 11, 30, 15, 0, tzinfo=UTC))
    assert after["message"] == (
        "not due: edition 2026-11-30 was sent; edition 2026-12-01 is due "
        "2026-11-30 21:15 UTC (06:15 Asia/Tokyo)"
    )


def test_a_reader_moving_while_an_edition_is_in_flight_gets_it_at_the_moment_it_was_given(
    zoned, monkeypatch, tmp_path
):
    send_daily(monkeypatch, datetime(2026, 11, 30, 14, 15, tzinfo=UTC))
    assert rcpts(zoned) == [LA, OSLO, TOKYO]
    new_article(tmp_path, 2)
    tokyo = send_daily(monkeypatch, datetime(2026, 11, 30, 21, 15, tzinfo=UTC))
    assert (tokyo["edition"], tokyo["sent"], tokyo["waiting"]) == ("2026-12-01", 1, 2)
    # The Los Angeles reader moves to Tokyo, whose 06:15 has passed: edition 2026-12-01
    # keeps the moment it gave them (14:15 UTC); the next edition takes the new zone.
    run("subscribers", "prefs", LA, "--timezone", "Asia/Tokyo")
    assert send_daily(monkeypatch, datetime(2026, 11, 30, 22, 0, tzinfo=UTC))["status"] == "not-due"
    assert rcpts(zoned, 3) == [TOKYO]
    send_daily(monkeypatch, datetime(2026, 12, 1, 14, 15, tzinfo=UTC))
    assert rcpts(zoned, 3) == [LA, OSLO, TOKYO]
    new_article(tmp_path, 3)
    send_daily(monkeypatch, datetime(2026, 12, 1, 21, 15, tzinfo=UTC))
    assert rcpts(zoned, 6) == [LA, TOKYO]


@pytest.mark.parametrize("zoned", [False], indirect=True)
def test_without_deliver_local_everyone_gets_it_at_the_lists_time_whatever_their_zone(
    zoned, monkeypatch
):
    early = send_daily(monkeypatch, datetime(2026, 12, 1, 4, 0, tzinfo=UTC))  # 05:00 in Oslo
    assert early["status"] == "not-due"
    assert early["message"] == "not due: edition 2026-12-01 is due 2026-12-01 06:15 Europe/Oslo"
    sent = send_daily(monkeypatch, datetime(2026, 12, 1, 5, 15, tzinfo=UTC))
    assert (sent["status"], sent["sent"], sent["waiting"]) == ("complete", 3, 0)
    assert rcpts(zoned) == [LA, OSLO, TOKYO]
    status = json.loads(run("status", "--list", "daily", "--json").stdout)
    assert (status["status"], status["waiting"], status["next_due"]) == ("complete", 0, None)


def test_one_run_sends_two_editions_in_flight_when_zones_lie_more_than_a_day_apart(
    zoned, monkeypatch, tmp_path
):
    # UTC+14 and UTC-11: 1 December's 06:15 comes to Kiritimati before it comes to Pago
    # Pago for 30 November.
    run("subscribers", "prefs", TOKYO, "--timezone", "Pacific/Kiritimati")
    run("subscribers", "prefs", LA, "--timezone", "Pacific/Pago_Pago")
    send_daily(monkeypatch, datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    assert rcpts(zoned) == [OSLO, TOKYO]
    new_article(tmp_path, 2)
    both = send_daily(monkeypatch, datetime(2026, 11, 30, 17, 15, tzinfo=UTC))
    assert (both["edition"], both["sent"]) == ("2026-12-01", 1)
    assert [(e["edition"], e["sent"], e["status"]) for e in both["earlier"]] == [
        ("2026-11-30", 1, "complete")
    ]
    assert rcpts(zoned, 2) == [LA, TOKYO]
    text = run("send", "--list", "daily", "--dry-run").stdout
    assert "edition 2026-12-01" in text
    states = {
        key: json.loads(run("status", "--list", "daily", "--edition", key, "--json").stdout)
        for key in ("2026-11-30", "2026-12-01")
    }
    assert states["2026-11-30"]["status"] == "complete"
    assert (states["2026-12-01"]["status"], states["2026-12-01"]["waiting"]) == ("sending", 2)


def test_a_database_of_the_previous_release_gains_zones_and_due_moments(db_url):
    from digest.models import Edition, NewSubscriber
    from digest.store import open_store
    from digest.store.migrations import MIGRATIONS, current_version
    from tests.support.values import NOW

    store = open_store(db_url)
    with store.engine.begin() as conn:  # back to the shape before version 10
        conn.exec_driver_sql("ALTER TABLE subscribers DROP COLUMN timezone")
        conn.exec_driver_sql("ALTER TABLE deliveries DROP COLUMN due_at")
        conn.exec_driver_sql("DELETE FROM schema_migrations WHERE version = 10")
    store.close()
    upgraded = open_store(db_url)  # reopened: migration 10 runs
    assert current_version(upgraded.engine) == max(v for v, _, _ in MIGRATIONS)
    upgraded.ensure_lists([("daily", "Daily")])
    upgraded.add_subscribers(
        [NewSubscriber(email="a@example.org", lists=("daily",), timezone="Asia/Tokyo")], NOW
    )
    assert upgraded.record("a@example.org").timezone == "Asia/Tokyo"
    edition = upgraded.create_edition(
        Edition(list_name="daily", key="2026-11-26", created_at=NOW, sections=())
    )
    # A ledger filled without moments (a list without local delivery): due at once.
    upgraded.enqueue_list(edition.id, "daily", NOW)
    assert [c.attempt for c in upgraded.claim(edition.id, "daily", 5, NOW, "r")] == [1]
    upgraded.close()
