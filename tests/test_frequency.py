"""Each reader's frequency: a daily list whose readers may choose its weekly edition instead.

Through the CLI with DIGEST_NOW, on a real store and a recording SMTP server: `digest send`
run every hour for fifteen days with a new article a day; daily readers get one message a
local day, weekly readers one a week on Monday, and nobody gets an article twice, a reader
who switches from daily to weekly mid-week included."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime, time, timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import text

from digest.compose.mime import body_text
from digest.config import ListConfig
from digest.exits import ExitCode
from digest.models import (
    Article,
    Edition,
    EditionState,
    Membership,
    NewSubscriber,
    Readers,
    Section,
)
from digest.periods import Schedule
from tests.support.cli import run, sample_settings, set_settings
from tests.support.schedules import LIST_ZONE, START, at, new_article
from tests.support.smtpd import smtp_server
from tests.support.values import NOW, ROOT

DAILY, WEEKLY, SWITCHER = "d@example.org", "w@example.org", "s@example.org"
SWITCH_AT = datetime(2026, 12, 9, 12, 0, tzinfo=LIST_ZONE)  # a Wednesday, after its daily


def _frequency_config(folder, extra: str = "") -> str:
    text = (ROOT / "digest.toml").read_text().replace('"samples/', f'"{ROOT}/samples/')
    text = text.replace('timezone = "America/New_York"', 'timezone = "Europe/Oslo"')
    text = text.replace('# send_at = "06:15"', f'send_at = "06:15"\n{extra}')
    path = folder / "digest.toml"
    path.write_text(text)
    return str(path)


def _article_urls(message) -> list[str]:
    return re.findall(
        r"https://news\.orbital-dispatch\.example/\S+?\.html", body_text(message, "plain")
    )


def test_daily_and_weekly_readers_get_their_own_series_and_no_article_twice(
    monkeypatch, tmp_path, db_url
):
    set_settings(
        monkeypatch,
        sample_settings(
            db_url, DIGEST_CONFIG=_frequency_config(tmp_path), DIGEST_SEND_RETRY_BUDGET="0"
        ),
    )
    at(monkeypatch, START)
    readers = tmp_path / "readers.csv"
    readers.write_text(
        f"email,lists,frequency\n{DAILY},daily,\n{WEEKLY},daily,weekly\n{SWITCHER},daily,daily\n"
    )
    run("init")
    run("fetch")
    run("subscribers", "import", str(readers))
    received: dict[str, list[tuple[datetime, str, list[str]]]] = defaultdict(list)
    not_due: set[str] = set()
    with smtp_server() as server:
        monkeypatch.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        for step in range(15 * 24):
            moment = START + timedelta(hours=step)
            at(monkeypatch, moment)
            if moment.hour == 0 and step:
                new_article(tmp_path, step // 24)
            if moment == SWITCH_AT:
                changed = run(
                    "subscribers", "prefs", SWITCHER, "--list", "daily", "--frequency", "weekly"
                )
                assert "weekly" in changed.stdout
            before = len(server.handler.messages)
            for line in run("send", "--json").stdout.splitlines():
                report = json.loads(line)
                assert report["status"] in ("complete", "not-due"), report
                if report["status"] == "not-due":
                    not_due.add(report["message"].split(" is due", 1)[0].split("; the next")[0])
            for item in server.handler.messages[before:]:
                message = message_from_bytes(item.raw, policy=policy.default)
                key = str(message["Feedback-ID"]).split(":")[0]
                for rcpt in item.rcpt_tos:
                    received[rcpt].append((moment, key, _article_urls(message)))
    days = [(START + timedelta(days=d)).date() for d in range(15)]
    # The daily reader: one daily edition each local day, from 06:15 on; never a weekly one.
    daily = received[DAILY]
    assert [m.date() for m, _, _ in daily] == days
    assert all("W" not in key and (m.hour, m.minute) >= (6, 15) for m, key, _ in daily)
    # The weekly reader: one edition a week, on Monday from 06:15, keyed by its week.
    weekly = received[WEEKLY]
    assert [key for _, key, _ in weekly] == ["2026-W49", "2026-W50", "2026-W51"]
    assert all(m.weekday() == 0 and m.hour >= 6 for m, _, _ in weekly)
    # The week's edition holds the week's news, ranked and capped as the daily ones are.
    assert [u.split("/")[-1] for u in weekly[2][2] if "/day-" in u] == [
        f"day-{d}.html" for d in range(14, 8, -1)
    ]  # days 8 to 14, newest first, to the section's cap of 6
    # The switcher: daily up to the Wednesday of the switch, then the weekly edition only.
    switcher = received[SWITCHER]
    assert [key for _, key, _ in switcher if "W" not in key] == [d.isoformat() for d in days[:10]]
    assert [key for _, key, _ in switcher if "W" in key] == ["2026-W51"]
    week = next(urls for _, key, urls in switcher if key == "2026-W51")
    assert not any(f"/day-{d}.html" in u for u in week for d in (8, 9))  # had them daily
    assert any("/day-10.html" in u for u in week)
    for reader, messages in received.items():
        articles = [u for _, _, urls in messages for u in urls]
        assert len(articles) == len(set(articles)), reader
    # Each series said when its next edition is due.
    assert any(m.startswith("not due: edition 2026-W50") for m in not_due)
    assert any(m.startswith("not due: edition 2026-12-0") for m in not_due)


# -- the settings -----------------------------------------------------------------------------


def _list(**fields) -> ListConfig:
    return ListConfig(
        name="news", title="News", sender="News <n@example.org>", postal_address="1 Road", **fields
    )


def test_each_series_is_due_on_its_day_at_its_time():
    daily = _list(send_at="06:15")
    assert daily.offered == {
        "daily": Schedule("daily", 0, time(6, 15)),
        "weekly": Schedule("weekly", 0, time(6, 15)),  # Monday, at the list's time
    }
    chosen = _list(
        send_at="06:15", frequencies=("daily", "weekly:fri", "monthly"), frequency_send_at="08:00"
    )
    assert chosen.series_schedule("weekly") == Schedule("weekly", 4, time(8, 0))
    assert chosen.series_schedule("monthly") == Schedule("monthly", 1, time(8, 0))
    noon = START + timedelta(hours=12)
    assert chosen.key_at(noon, "weekly") == "2026-W49" and chosen.key_at(noon) == "2026-11-30"
    assert list(_list(schedule="weekly:wed").offered) == ["weekly"]
    monthly = _list(schedule="weekly:wed", frequencies=("weekly", "monthly:15"))
    assert list(monthly.offered) == ["weekly", "monthly"]
    assert monthly.check_frequency("monthly") == "monthly"
    assert monthly.check_frequency("weekly") is None  # the list's own schedule
    # A frequency the list stopped offering falls back to its own schedule.
    assert daily.series_schedule("monthly") == daily.cadence


# -- the ledger, on both engines --------------------------------------------------------------


def test_the_ledger_records_what_a_reader_had_and_their_message_leaves_it_out(store):
    store.ensure_lists([("daily", "Daily")])
    store.sync_sections([("launch-pad", "Launch Pad", ["/feeds/x.xml"])])
    items = [
        Article(key=f"guid:{i}", section="launch-pad", title=f"T{i}", url=f"https://x/{i}")
        for i in range(4)
    ]
    store.save_articles(items, NOW)
    stored = sorted(store.articles(section="launch-pad"), key=lambda a: a.key)
    store.add_subscribers(
        [
            NewSubscriber(email="d@example.org", lists=("daily",)),
            NewSubscriber(email="s@example.org", lists=("daily",)),
            NewSubscriber(
                email="w@example.org", memberships=(Membership("daily", frequency="weekly"),)
            ),
        ],
        NOW,
    )
    own, weekly = Readers(None, ("weekly",)), Readers("weekly", ("weekly",))

    def edition(key: str, articles) -> Edition:
        return Edition(
            list_name="daily",
            key=key,
            created_at=NOW,
            sections=(Section("launch-pad", "Launch Pad", tuple(articles)),),
            state=EditionState.draft,
        )

    day = store.freeze_edition(edition("2026-12-01", stored[:2]), NOW, own)
    assert sum(store.counts(day.stored_id).values()) == 2  # the daily readers only
    switcher = store.subscriber("s@example.org").id
    store.set_membership(switcher, "daily", NOW, frequency="weekly")
    week = store.freeze_edition(edition("2026-W49", stored), NOW + timedelta(hours=1), weekly)
    claimed = {
        c.subscriber.email: c.subscriber.omit
        for c in store.claim(week.stored_id, "daily", 10, NOW, "run")
    }
    # The switcher's message leaves out what their daily edition (still queued) holds.
    assert claimed == {
        "s@example.org": frozenset({stored[0].id, stored[1].id}),
        "w@example.org": frozenset(),
    }
    # Filling again adds nothing; the omissions are the ledger's, not recomputed.
    assert store.enqueue_list(week.stored_id, "daily", NOW, weekly) == 0
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM delivery_omissions")).scalar_one() == 2


# -- the settings and their errors ------------------------------------------------------------


def _project(monkeypatch, tmp_path, db_url, extra: str = "") -> None:
    set_settings(
        monkeypatch,
        sample_settings(
            db_url,
            DIGEST_CONFIG=_frequency_config(tmp_path, extra),
            DIGEST_OUTBOX=str(tmp_path / "outbox"),
            DIGEST_SEND_RETRY_BUDGET="0",
        ),
    )
    at(monkeypatch, START)


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (
            'schedule = "weekly:mon"\nfrequencies = ["daily", "weekly"]',
            "a weekly list cannot offer daily",
        ),
        ('frequencies = ["weekly"]', "must include the list's own schedule, daily"),
        ('frequencies = ["daily", "hourly"]', "'hourly' is not a frequency"),
        ('frequencies = ["daily", "weekly:fri", "weekly"]', "weekly is named twice"),
        ('frequency_send_at = "25:00"', "is not a time of day"),
    ],
)
def test_a_list_offers_only_the_frequencies_its_schedule_allows(
    monkeypatch, tmp_path, db_url, extra, said
):
    _project(monkeypatch, tmp_path, db_url, extra.replace('schedule = "weekly:mon"\n', ""))
    if "weekly:mon" in extra:
        config = tmp_path / "digest.toml"
        config.write_text(
            config.read_text().replace('schedule = "daily"', 'schedule = "weekly:mon"')
        )
    failed = run("lists", "list", code=ExitCode.CONFIG)
    assert said in failed.stderr and "lists.0" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1


def test_prefs_sets_a_frequency_the_list_offers_and_names_them_otherwise(
    monkeypatch, tmp_path, db_url
):
    _project(monkeypatch, tmp_path, db_url)
    run("init")
    run("subscribers", "add", "ada@example.org", "--list", "daily")
    refused = run(
        "subscribers",
        "prefs",
        "ada@example.org",
        "--frequency",
        "monthly",
        code=ExitCode.SUBSCRIBER,
    )
    assert refused.stderr.strip() == (
        "error: 'monthly' is not a frequency list daily offers: daily, weekly (or default)"
    )
    changed = run("subscribers", "prefs", "ada@example.org", "--frequency", "Weekly")
    assert changed.stdout.strip() == "ada@example.org daily: all sections, weekly"
    shown = json.loads(run("subscribers", "show", "ada@example.org", "--json").stdout)
    assert shown["frequencies"] == {"daily": "weekly"}
    assert "daily (active, weekly)" in run("subscribers", "show", "ada@example.org").stdout
    run("subscribers", "prefs", "ada@example.org", "--frequency", "default")
    shown = json.loads(run("subscribers", "show", "ada@example.org", "--json").stdout)
    assert shown["frequencies"] == {}
    # A list that lists monthly offers it.
    config = tmp_path / "digest.toml"
    config.write_text(
        config.read_text().replace(
            'send_at = "06:15"',
            'send_at = "06:15"\nfrequencies = ["daily", "weekly", "monthly:15"]',
        )
    )
    run("subscribers", "prefs", "ada@example.org", "--frequency", "monthly")
    assert json.loads(run("subscribers", "show", "ada@example.org", "--json").stdout)[
        "frequencies"
    ] == {"daily": "monthly"}


def test_changing_frequency_leaves_an_unsubscribed_reader_unsubscribed(
    monkeypatch, tmp_path, db_url
):
    _project(monkeypatch, tmp_path, db_url)
    run("init")
    run("subscribers", "add", "ada@example.org", "--list", "daily")
    run("subscribers", "unsubscribe", "ada@example.org", "--list", "daily")
    run("subscribers", "prefs", "ada@example.org", "--frequency", "weekly")
    shown = json.loads(run("subscribers", "show", "ada@example.org", "--json").stdout)
    assert shown["status"] == "unsubscribed"
    assert shown["memberships"]["daily"]["state"] == "unsubscribed"


def test_import_reads_a_frequency_column_and_export_writes_it(monkeypatch, tmp_path, db_url):
    _project(monkeypatch, tmp_path, db_url)
    run("init")
    path = tmp_path / "in.csv"
    path.write_text(
        "email,lists,frequency\n"
        "a@example.org,daily,weekly\n"
        "b@example.org,daily,monthly\n"
        "c@example.org,daily,\n"
        "d@example.org,daily,daily:weekly\n"
    )
    result = run("subscribers", "import", str(path), code=ExitCode.IMPORT)
    assert result.stderr.strip() == (
        f"{path}:3: frequency 'monthly' is not one list daily offers (daily, weekly)"
    )
    assert "3 added" in result.stdout and "1 rejected" in result.stdout
    exported = run("subscribers", "export").stdout.splitlines()
    assert exported[0].split(",")[:5] == ["email", "name", "lists", "sections", "frequency"]
    rows = {line.split(",")[0]: line.split(",")[4] for line in exported[1:]}
    assert rows == {"a@example.org": "weekly", "c@example.org": "", "d@example.org": "weekly"}
    # --update follows the file's frequency; a file without the column keeps them.
    path.write_text("email,lists,frequency\na@example.org,daily,daily\n")
    updated = run("subscribers", "import", str(path), "--update")
    assert "daily frequency: weekly -> default" in updated.stdout
    path.write_text("email,lists\nd@example.org,daily\n")
    run("subscribers", "import", str(path), "--update")
    listed = {
        row["email"]: row["frequency"]
        for row in map(json.loads, run("subscribers", "list", "-f", "json").stdout.splitlines())
    }
    assert listed == {"a@example.org": [], "c@example.org": [], "d@example.org": ["weekly"]}
    # An export imports back unchanged.
    out = tmp_path / "out.jsonl"
    run("subscribers", "export", "-f", "json", "--out", str(out))
    run("subscribers", "remove", "d@example.org")
    run("subscribers", "import", str(out))
    assert json.loads(run("subscribers", "show", "d@example.org", "--json").stdout)[
        "frequencies"
    ] == {"daily": "weekly"}


def test_send_status_editions_and_preview_name_the_weekly_series(monkeypatch, tmp_path, db_url):
    _project(monkeypatch, tmp_path, db_url)
    run("init")
    run("fetch")
    path = tmp_path / "in.csv"
    path.write_text("email,lists,frequency\nd@example.org,daily,\nw@example.org,daily,weekly\n")
    run("subscribers", "import", str(path))
    at(monkeypatch, START + timedelta(hours=5))  # Monday 05:00: neither series is due
    early = [json.loads(line) for line in run("send", "--json").stdout.splitlines()]
    assert [r["message"] for r in early] == [
        "not due: edition 2026-11-30 is due 2026-11-30 06:15 Europe/Oslo",
        "not due: edition 2026-W49 is due 2026-11-30 06:15 Europe/Oslo",
    ]
    out = tmp_path / "preview"
    shown = run("preview", "--frequency", "weekly", "--out", str(out))
    assert "edition 2026-W49 for" in shown.stdout
    refused = run("preview", "--frequency", "monthly", "--out", str(out), code=ExitCode.SELECTION)
    assert "offers: daily, weekly" in refused.stderr
    keys = [
        r["key"] for r in map(json.loads, run("editions", "list", "--json").stdout.splitlines())
    ]
    assert keys == ["2026-W49", "2026-11-30"]
    at(monkeypatch, START + timedelta(hours=7))
    dry = [json.loads(line) for line in run("send", "--dry-run", "--json").stdout.splitlines()]
    assert [(r["edition"], r["status"], r["sent"]) for r in dry] == [
        ("2026-11-30", "dry-run", 1),
        ("2026-W49", "dry-run", 1),
    ]
    sent = [json.loads(line) for line in run("send", "--json").stdout.splitlines()]
    assert [(r["edition"], r["status"], r["sent"]) for r in sent] == [
        ("2026-11-30", "complete", 1),
        ("2026-W49", "complete", 1),
    ]
    again = [json.loads(line)["message"] for line in run("send", "--json").stdout.splitlines()]
    assert again[1] == (
        "not due: edition 2026-W49 was sent; the next, 2026-W50, is due 2026-12-07 06:15 "
        "Europe/Oslo"
    )
    status = json.loads(run("status", "--json").stdout)
    assert status["edition"] == "2026-11-30" and status["total"] == 1
    weekly = json.loads(run("status", "--edition", "2026-W49", "--json").stdout)
    assert weekly["edition"] == "2026-W49" and weekly["total"] == 1
    assert json.loads(run("editions", "show", "2026-W49", "--json").stdout)["state"] == "complete"
    keys = [
        r["key"] for r in map(json.loads, run("editions", "list", "--json").stdout.splitlines())
    ]
    assert keys == ["2026-W50", "2026-12-01", "2026-W49", "2026-11-30"]
    # The public archive shows the list's own series: the week's edition repeats it.
    site = tmp_path / "site"
    run("archive", "build", "--out", str(site))
    pages = [p.name for p in site.rglob("*")]
    assert any("2026-11-30" in name for name in pages)
    assert not any("2026-W49" in name for name in pages)
