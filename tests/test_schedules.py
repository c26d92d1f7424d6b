"""Schedules through the CLI with DIGEST_NOW: a daily list due at 06:15 and a weekly list
due Mondays at 07:00 (Europe/Oslo), `digest send` run by cron every six hours for fifteen
days with a new article a day, on a real store and a recording SMTP server."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime, timedelta
from email import message_from_bytes, policy

from digest.compose.mime import body_text
from tests.support.cli import run, sample_settings, set_settings
from tests.support.schedules import START, at, daily_and_weekly_config, new_article
from tests.support.smtpd import smtp_server

DAILY, WEEKLY, BOTH = "d@example.org", "w@example.org", "b@example.org"


def test_each_reader_gets_one_edition_per_period_never_early_never_an_article_twice(
    monkeypatch, tmp_path, db_url
):
    set_settings(
        monkeypatch,
        sample_settings(
            db_url,
            DIGEST_CONFIG=daily_and_weekly_config(tmp_path, "Europe/Oslo"),
            DIGEST_SEND_RETRY_BUDGET="0",
        ),
    )
    at(monkeypatch, START)
    readers = tmp_path / "readers.csv"
    readers.write_text(f"email,lists\n{DAILY},daily\n{WEEKLY},weekly\n{BOTH},daily;weekly\n")
    run("init")
    run("fetch")
    run("subscribers", "import", str(readers))
    received: dict[str, list[tuple[datetime, str, list[str]]]] = defaultdict(list)
    with smtp_server() as server:
        monkeypatch.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        for step in range(15 * 4):
            moment = START + timedelta(hours=6 * step)
            at(monkeypatch, moment)
            if moment.hour == 0 and step:
                new_article(tmp_path, step // 4)
            before = len(server.handler.messages)
            for line in run("send", "--json").stdout.splitlines():
                report = json.loads(line)
                assert report["status"] in ("complete", "not-due"), report
                if report["status"] == "not-due":
                    assert report["message"].startswith("not due: edition")
            for item in server.handler.messages[before:]:
                message = message_from_bytes(item.raw, policy=policy.default)
                urls = re.findall(
                    r"^https://\S+/(?:launch-pad|[a-z-]+)/\S+$", body_text(message, "plain"), re.M
                )
                for rcpt in item.rcpt_tos:
                    received[rcpt].append((moment, str(message["List-Id"]), urls))
    days = 15
    for reader in (DAILY, BOTH):
        daily = [(m, urls) for m, list_id, urls in received[reader] if "daily" in list_id]
        assert sorted({m.date() for m, _ in daily}) == [
            (START + timedelta(days=d)).date() for d in range(days)
        ], reader
        assert len(daily) == days  # one a local day
        assert all(m.hour >= 12 or (m.hour, m.minute) >= (6, 15) for m, _ in daily)
    for reader in (WEEKLY, BOTH):
        weekly = [(m, urls) for m, list_id, urls in received[reader] if "weekly" in list_id]
        assert [m.isocalendar()[1] for m, _ in weekly] == [49, 50, 51], reader
        assert all(m.weekday() == 0 and m.hour >= 7 for m, _ in weekly)
    for reader, messages in received.items():
        for list_name in ("daily", "weekly"):
            urls = [u for _, list_id, found in messages if list_name in list_id for u in found]
            articles = [u for u in urls if "/u/" not in u and "/p/" not in u and "/e/" not in u]
            assert len(articles) == len(set(articles)), (reader, list_name)
