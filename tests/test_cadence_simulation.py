"""Sixty days of hourly `digest send` runs (DIGEST_NOW moved an hour at a time), in-process
through the CLI, on a real SQLite file and a recording SMTP server: a daily list delivering
at 06:15 in each reader's own zone, a weekly list delivering Mondays at 07:00 in each reader's
zone, readers in Los Angeles, Oslo and Tokyo (and one with no zone: the list's), readers of
the daily list who chose its weekly series in each of the three zones, a new article
a day, both changes of daylight saving time inside the sixty days, and once a real `digest
send` process killed with SIGKILL in the middle of a send.

Every reader is a row (address, zone, list, frequency) and what each should receive is
computed from the rows alone, with plain datetime arithmetic: one message per local period
of the reader's frequency, never before the send time on the reader's clock, never an article
twice."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email import message_from_bytes, policy
from zoneinfo import ZoneInfo

from digest.compose.mime import body_text
from tests.support.cli import child_env, run, run_many, sample_settings, set_settings
from tests.support.schedules import at, daily_and_weekly_config, new_article
from tests.support.smtpd import smtp_server

HOME_ZONE = "Europe/Oslo"
# Between the end of Los Angeles's day and Tokyo's next 06:15: no edition is half-sent.
FIRST_RUN = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)  # a Monday; Oslo's DST ends 25 Oct, LA's 1 Nov
DAYS = 60
AFTER_LAST = FIRST_RUN + timedelta(days=DAYS)  # the first hour not run
SEND_AT = {"daily": time(6, 15), "weekly": time(7, 0)}
SCHEDULE = {"daily": "daily", "weekly": "weekly:mon"}
KILLED_AT = datetime(2026, 10, 20, 22, 0, tzinfo=UTC)  # Tokyo's 07:00 on 21 Oct
KILL_AFTER = 3  # messages the killed run hands over first
ARTICLE_HOUR = 20  # UTC: each day's article arrives before the first zone's 06:15


@dataclass(frozen=True)
class Reader:
    email: str
    zone: str | None  # None: the list's
    list: str
    frequency: str | None = None  # None: the list's schedule

    @property
    def clock(self) -> ZoneInfo:
        return ZoneInfo(self.zone or HOME_ZONE)

    @property
    def every(self) -> str:
        return self.frequency or SCHEDULE[self.list]


ROWS = [
    Reader("la@example.org", "America/Los_Angeles", "daily"),
    Reader("oslo@example.org", "Europe/Oslo", "daily"),
    Reader("home@example.org", None, "daily"),
    *(Reader(f"tokyo{i:02d}@example.org", "Asia/Tokyo", "daily") for i in range(8)),
    # Readers of the daily list who chose its weekly series (Mondays at its send time).
    Reader("daily-weekly-la@example.org", "America/Los_Angeles", "daily", "weekly"),
    Reader("daily-weekly-oslo@example.org", "Europe/Oslo", "daily", "weekly"),
    Reader("daily-weekly-tokyo@example.org", "Asia/Tokyo", "daily", "weekly"),
    Reader("weekly-la@example.org", "America/Los_Angeles", "weekly"),
    Reader("weekly-oslo@example.org", "Europe/Oslo", "weekly"),
    Reader("weekly-tokyo@example.org", "Asia/Tokyo", "weekly"),
]


def _period(reader: Reader, day: date) -> tuple:
    """The reader's period holding a local date: the date, or its ISO week."""
    return (day,) if reader.every == "daily" else day.isocalendar()[:2]


def _due_dates(reader: Reader) -> list[date]:
    """The local dates something falls due to the reader, from before the start to the end."""
    first, last = (FIRST_RUN - timedelta(days=8)).date(), AFTER_LAST.date() + timedelta(days=1)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return days if reader.every == "daily" else [d for d in days if d.weekday() == 0]


def _served(moment: datetime) -> datetime:
    """The first hourly run at or after ``moment`` (never before the first run)."""
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return max(FIRST_RUN, hour if hour == moment else hour + timedelta(hours=1))


def expected(reader: Reader) -> dict[tuple, datetime]:
    """Each period the reader should get a message for, with the moment it falls due: a
    period still running on the reader's clock at the start, due before the last run."""
    out = {}
    for day in _due_dates(reader):
        due = datetime.combine(day, SEND_AT[reader.list], tzinfo=reader.clock).astimezone(UTC)
        length = 1 if reader.every == "daily" else 7
        ends = datetime.combine(day + timedelta(days=length), time(0), tzinfo=reader.clock)
        if ends > FIRST_RUN and _served(due) < AFTER_LAST:
            out[_period(reader, day)] = due
    return out


def _readers_file(folder):
    path = folder / "readers.csv"
    path.write_text(
        "email,lists,frequency,timezone\n"
        + "".join(f"{r.email},{r.list},{r.frequency or ''},{r.zone or ''}\n" for r in ROWS)
    )
    return path


def _kill_mid_send(server, folder) -> None:
    """A real `digest send` process, killed while the relay holds its third message's reply
    (one connection: nothing else is in flight)."""
    server.handler.hold_after(len(server.handler.messages) + KILL_AFTER)
    env = child_env(server) | {"DIGEST_SMTP_CONNECTIONS": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "digest", "send", "--list", "daily", "--json"],
        env=env,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        server.handler.wait_for_messages(len(server.handler.messages) + KILL_AFTER, timeout=60)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        server.handler.release()


def test_sixty_days_of_hourly_runs_give_each_reader_one_edition_per_local_period(
    monkeypatch, tmp_path
):
    set_settings(
        monkeypatch,
        sample_settings(
            f"sqlite:///{tmp_path / 'digest.db'}",
            DIGEST_CONFIG=daily_and_weekly_config(tmp_path, HOME_ZONE, deliver_local=True),
            DIGEST_SEND_RETRY_BUDGET="0",
        ),
    )
    at(monkeypatch, FIRST_RUN)
    run("init")
    run("subscribers", "import", str(_readers_file(tmp_path)))
    received: dict[str, list[tuple[datetime, str, list[str]]]] = defaultdict(list)
    articles = 0
    with smtp_server() as server:
        monkeypatch.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        for hour in range(DAYS * 24):
            moment = FIRST_RUN + timedelta(hours=hour)
            at(monkeypatch, moment)
            if moment.hour == ARTICLE_HOUR or hour == 0:  # before Tokyo's 06:15 (21:15 UTC)
                new_article(tmp_path, articles)
                articles += 1
            before = len(server.handler.messages)
            if moment == KILLED_AT:
                _kill_mid_send(server, tmp_path)
                assert len(server.handler.messages) - before == KILL_AFTER
            for line in run_many("send", "--json").stdout.splitlines():
                report = json.loads(line)
                assert report["status"] in ("complete", "not-due"), report
                if report["status"] == "not-due":
                    assert report["message"].startswith("not due: "), report
                    assert report["next_due"], report
            for item in server.handler.messages[before:]:
                message = message_from_bytes(item.raw, policy=policy.default)
                urls = re.findall(
                    r"https://\S+/launch-pad/day-\d+\.html", body_text(message, "plain")
                )
                for rcpt in item.rcpt_tos:
                    received[rcpt].append((moment, str(message["List-Id"]), urls))
        killed = json.loads(
            run("status", "--list", "daily", "--edition", "2026-10-21", "--json").stdout
        )

    # The killed run handed over three messages (the third's reply never came: its row is
    # `unknown`, the reader has it); the next run sent the rest, nobody twice.
    assert killed["counts"] == {"sent": 10, "unknown": 1}, killed
    assert set(received) == {r.email for r in ROWS}
    for reader in ROWS:
        got = received[reader.email]
        assert all(f"<{reader.list}." in list_id for _, list_id, _ in got), reader
        periods = Counter(_period(reader, m.astimezone(reader.clock).date()) for m, _, _ in got)
        due = expected(reader)
        # One message per local period, for each period and no other.
        assert periods == Counter(due.keys()), reader
        for moment, _, _ in got:
            local = moment.astimezone(reader.clock)
            wanted = due[_period(reader, local.date())]
            # Never before the send time on the reader's clock; on time, but for the period
            # that was already due when the runs began.
            assert moment >= wanted or wanted < FIRST_RUN, (reader, moment)
            assert moment == _served(wanted), (reader, moment, wanted)
            assert local.time() >= SEND_AT[reader.list], (reader, local)
        articles = [u for _, _, urls in got for u in urls]
        assert len(articles) == len(set(articles)), reader
        assert articles, reader
