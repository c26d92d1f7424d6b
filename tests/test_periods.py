"""Schedules and periods are pure: keys, due times and the period after, in a list's zone."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from digest.periods import (
    due_at,
    edition_key,
    first_day,
    following_key,
    is_due,
    local_keys,
    next_local_moment,
    parse_schedule,
    period_end,
    previous_key,
    reader_due,
)

OSLO = ZoneInfo("Europe/Oslo")
TOKYO, LA = ZoneInfo("Asia/Tokyo"), ZoneInfo("America/Los_Angeles")


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


def test_the_period_before_crosses_years_and_iso_weeks():
    assert previous_key(parse_schedule("daily"), "2027-01-01") == "2026-12-31"
    assert previous_key(parse_schedule("weekly:mon"), "2027-W01") == "2026-W53"
    assert previous_key(parse_schedule("monthly:1"), "2027-01") == "2026-12"


def test_a_readers_moment_is_send_at_on_their_own_clock_on_the_editions_date():
    daily = parse_schedule("daily", "06:15")
    assert reader_due(daily, "2026-12-01", TOKYO) == datetime(2026, 11, 30, 21, 15, tzinfo=UTC)
    assert reader_due(daily, "2026-12-01", OSLO) == datetime(2026, 12, 1, 5, 15, tzinfo=UTC)
    assert reader_due(daily, "2026-12-01", LA) == datetime(2026, 12, 1, 14, 15, tzinfo=UTC)
    weekly = parse_schedule("weekly:mon", "07:00")
    assert reader_due(weekly, "2026-W49", TOKYO) == datetime(2026, 11, 29, 22, 0, tzinfo=UTC)
    assert reader_due(weekly, "2026-W49", LA) == datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def test_a_readers_moment_follows_their_zones_daylight_saving_changes():
    daily = parse_schedule("daily", "06:15")
    # Oslo leaves summer time on 25 October 2026, Los Angeles on 1 November.
    assert reader_due(daily, "2026-10-24", OSLO).hour == 4
    assert reader_due(daily, "2026-10-25", OSLO).hour == 5
    assert reader_due(daily, "2026-10-31", LA).hour == 13
    assert reader_due(daily, "2026-11-01", LA).hour == 14
    # On spring's change 02:30 does not exist in Oslo: it is read just after the gap
    # (03:30 summer time); on autumn's change 02:30 happens twice: the first one counts.
    early = parse_schedule("daily", "02:30")
    spring = reader_due(early, "2026-03-29", OSLO)
    assert spring == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert spring.astimezone(OSLO).time() == time(3, 30)
    assert reader_due(early, "2026-10-25", OSLO) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    # Days of 23 and 25 hours: each local date still has exactly one moment.
    moments = [reader_due(daily, f"2026-10-{d:02d}", OSLO) for d in range(24, 27)]
    assert [b - a for a, b in itertools.pairwise(moments)] == [
        timedelta(hours=25),
        timedelta(hours=24),
    ]


def test_a_period_ends_at_the_next_periods_first_midnight_in_each_zone():
    daily = parse_schedule("daily", "06:15")
    assert period_end(daily, "2026-12-01", TOKYO) == datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    assert period_end(daily, "2026-12-01", LA) == datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def test_an_edition_is_in_flight_from_its_first_zones_moment_to_its_last_zones_period_end():
    daily = parse_schedule("daily", "06:15")
    zones = [TOKYO, OSLO, LA]
    # Before Tokyo's 06:15 on 1 December: only 30 November, whose Los Angeles day runs on.
    assert local_keys(daily, datetime(2026, 11, 30, 21, 0, tzinfo=UTC), OSLO, zones) == [
        "2026-11-30"
    ]
    # Tokyo's moment has come: 30 November (LA) and 1 December (Tokyo) are both in flight.
    assert local_keys(daily, datetime(2026, 11, 30, 21, 15, tzinfo=UTC), OSLO, zones) == [
        "2026-11-30",
        "2026-12-01",
    ]
    # Los Angeles's 30 November has ended: 1 December alone.
    assert local_keys(daily, datetime(2026, 12, 1, 8, 0, tzinfo=UTC), OSLO, zones) == ["2026-12-01"]
    # With the list's own zone alone, as without local delivery: due from 06:15 Oslo.
    assert local_keys(daily, datetime(2026, 12, 1, 5, 0, tzinfo=UTC), OSLO, []) == []
    assert local_keys(daily, datetime(2026, 12, 1, 5, 15, tzinfo=UTC), OSLO, []) == ["2026-12-01"]


def test_the_next_moment_names_the_edition_and_the_zone_it_falls_due_in():
    daily = parse_schedule("daily", "06:15")
    now = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)  # Oslo's moment passed, LA's not yet
    key, moment, zone = next_local_moment(daily, now, OSLO, [TOKYO, OSLO, LA])
    assert (key, moment, str(zone)) == (
        "2026-12-01",
        datetime(2026, 12, 1, 14, 15, tzinfo=UTC),
        "America/Los_Angeles",
    )
    # An edition sent already is passed over: the next is Tokyo's 2 December.
    key, moment, zone = next_local_moment(daily, now, OSLO, [TOKYO, OSLO, LA], skip=["2026-12-01"])
    assert (key, moment, str(zone)) == (
        "2026-12-02",
        datetime(2026, 12, 1, 21, 15, tzinfo=UTC),
        "Asia/Tokyo",
    )
