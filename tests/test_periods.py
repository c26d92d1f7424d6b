"""Schedules and periods are pure: keys, due times and the period after, in a list's zone."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from digest.periods import (
    due_at,
    edition_key,
    first_day,
    following_key,
    is_due,
    parse_schedule,
)

OSLO = ZoneInfo("Europe/Oslo")


def test_schedules_parse_with_their_time_and_print_back():
    assert str(parse_schedule("daily")) == "daily"
    weekly = parse_schedule("Weekly:FRI", "6:05")
    assert (weekly.kind, weekly.day, weekly.at, str(weekly)) == (
        "weekly",
        4,
        time(6, 5),
        "weekly:fri",
    )
    assert str(parse_schedule("monthly:28")) == "monthly:28"
    for wrong in ("hourly", "weekly:funday", "monthly:29", "monthly:0", "daily:1"):
        with pytest.raises(ValueError, match="is not a schedule"):
            parse_schedule(wrong)
    with pytest.raises(ValueError, match="is not a time of day"):
        parse_schedule("daily", "25:00")


def test_keys_name_the_period_in_the_lists_time_zone():
    late = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # already 2027 in Oslo
    assert edition_key(late, UTC) == "2026-12-31"
    assert edition_key(late, OSLO) == "2027-01-01"
    assert edition_key(late, UTC, parse_schedule("weekly:mon")) == "2026-W53"
    assert edition_key(late, OSLO, parse_schedule("weekly:mon")) == "2026-W53"  # ISO year
    assert edition_key(late, OSLO, parse_schedule("monthly:1")) == "2027-01"


def test_the_period_after_crosses_years_and_iso_weeks():
    assert following_key(parse_schedule("daily"), "2026-12-31") == "2027-01-01"
    assert following_key(parse_schedule("weekly:mon"), "2026-W53") == "2027-W01"
    assert following_key(parse_schedule("monthly:1"), "2026-12") == "2027-01"
    assert first_day(parse_schedule("weekly:sun"), "2027-W01").isoformat() == "2027-01-04"


def test_an_edition_is_due_from_its_day_and_time_until_its_period_ends():
    weekly = parse_schedule("weekly:wed", "06:15")
    assert due_at(weekly, "2026-W49", OSLO) == datetime(2026, 12, 2, 6, 15, tzinfo=OSLO)
    assert not is_due(weekly, datetime(2026, 12, 1, 12, 0, tzinfo=OSLO), OSLO)  # Tuesday
    assert not is_due(weekly, datetime(2026, 12, 2, 6, 14, tzinfo=OSLO), OSLO)
    assert is_due(weekly, datetime(2026, 12, 2, 6, 15, tzinfo=OSLO), OSLO)
    assert is_due(weekly, datetime(2026, 12, 6, 23, 59, tzinfo=OSLO), OSLO)  # late: still
    monthly = parse_schedule("monthly:15")
    assert due_at(monthly, "2026-12", UTC) == datetime(2026, 12, 15, tzinfo=UTC)
    daily = parse_schedule("daily", "06:15")
    assert not is_due(daily, datetime(2026, 12, 1, 5, 14, tzinfo=UTC), OSLO)  # 06:14 there
    assert is_due(daily, datetime(2026, 12, 1, 5, 15, tzinfo=UTC), OSLO)


def test_a_key_of_another_schedule_is_refused():
    with pytest.raises(ValueError, match="not a week"):
        first_day(parse_schedule("weekly:mon"), "2026-12-01")
    with pytest.raises(ValueError, match="not a month"):
        first_day(parse_schedule("monthly:1"), "2026-13")
