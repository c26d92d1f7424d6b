"""Schedules and periods: when a list's edition is due and what its key is. Pure.

A list sends one edition per period of its schedule, in the list's time zone:

- ``daily``: a day, key ``2026-12-01``, due that day at ``send_at``;
- ``weekly:mon`` ... ``weekly:sun``: an ISO week, key ``2026-W49``, due that weekday;
- ``monthly:1`` ... ``monthly:28``: a month, key ``2026-12``, due that day of the month.

A list may offer its readers a less frequent series besides its own (``frequencies`` in
digest.toml): a daily list's weekly readers get the editions keyed ``2026-W49``. The shape of
a key names its series (``key_kind``), so a list's series never share a key.

An edition is due from its time until its period ends, so a run that comes late (cron was
down at 06:15) still sends the period's edition; a run before the time, or after the
period's edition was sent, has nothing to do.

A list that delivers locally (``deliver_local``) sends each reader the period's edition at
``send_at`` in the reader's own zone, on the reader's own date: edition ``2026-12-01`` goes
to Tokyo at 06:15 Tokyo time and to Los Angeles at 06:15 Los Angeles time. ``reader_due``,
``local_keys`` and ``next_local_moment`` say when, from the zones the list's readers are in.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

# Every key of every schedule: a day, an ISO week, a month (they also name URLs and headers).
KEY_PATTERN = re.compile(r"\d{4}-(?:\d{2}-\d{2}|W\d{2}|\d{2})")
KINDS = ("daily", "weekly", "monthly")  # most frequent first
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SCHEDULE = re.compile(r"daily|weekly:(mon|tue|wed|thu|fri|sat|sun)|monthly:([1-9]|1\d|2[0-8])")


@dataclass(frozen=True)
class Schedule:
    """``kind`` daily, weekly or monthly; ``day`` the weekday (0: Monday) or the day of the
    month it is due; ``at`` the local time it is due."""

    kind: str = "daily"
    day: int = 0
    at: time = time(0, 0)

    def __str__(self) -> str:
        if self.kind == "weekly":
            return f"weekly:{WEEKDAYS[self.day]}"
        if self.kind == "monthly":
            return f"monthly:{self.day}"
        return "daily"

    @property
    def window_hours(self) -> int:
        """How far the first edition looks back: one period."""
        return {"daily": 24, "weekly": 7 * 24, "monthly": 31 * 24}[self.kind]


def parse_schedule(text: str, send_at: str | None = None) -> Schedule:
    """``daily``, ``weekly:mon`` or ``monthly:1`` with an ``HH:MM`` time; ValueError with
    what is allowed otherwise."""
    match = _SCHEDULE.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(
            f"{text!r} is not a schedule: write daily, weekly:mon (a weekday: mon ... sun) or "
            "monthly:1 (a day from 1 to 28)"
        )
    at = parse_time(send_at) if send_at else time(0, 0)
    if match.group(1):
        return Schedule("weekly", WEEKDAYS.index(match.group(1)), at)
    if match.group(2):
        return Schedule("monthly", int(match.group(2)), at)
    return Schedule("daily", 0, at)


def parse_time(text: str) -> time:
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a time of day such as 06:15")
    return time(int(match.group(1)), int(match.group(2)))


def period_key(schedule: Schedule, day: date) -> str:
    """The key of the period holding the local date ``day``."""
    if schedule.kind == "weekly":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if schedule.kind == "monthly":
        return f"{day.year}-{day.month:02d}"
    return day.isoformat()


def edition_key(now: datetime, tz: tzinfo, schedule: Schedule | None = None) -> str:
    """The key of the period ``now`` falls in, in the list's time zone."""
    return period_key(schedule or Schedule(), now.astimezone(tz).date())


def first_day(schedule: Schedule, key: str) -> date:
    """The first local date of the period ``key``; ValueError if it is not one."""
    if schedule.kind == "weekly":
        match = re.fullmatch(r"(\d{4})-W(\d{2})", key)
        if match is None:
            raise ValueError(f"{key!r} is not a week such as 2026-W49")
        return date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    if schedule.kind == "monthly":
        match = re.fullmatch(r"(\d{4})-(\d{2})", key)
        if match is None or not 1 <= int(match.group(2)) <= 12:
            raise ValueError(f"{key!r} is not a month such as 2026-12")
        return date(int(match.group(1)), int(match.group(2)), 1)
    return date.fromisoformat(key)


def due_date(schedule: Schedule, key: str) -> date:
    """The local date the edition of ``key`` is due (the date it is sent and dated)."""
    start = first_day(schedule, key)
    if schedule.kind in ("weekly", "monthly"):
        return start + timedelta(days=schedule.day - (1 if schedule.kind == "monthly" else 0))
    return start


def due_at(schedule: Schedule, key: str, tz: tzinfo) -> datetime:
    """When the edition of ``key`` is due, as an aware time."""
    return datetime.combine(due_date(schedule, key), schedule.at, tzinfo=tz)


def following_key(schedule: Schedule, key: str) -> str:
    """The key of the period after ``key``."""
    start = first_day(schedule, key)
    if schedule.kind == "weekly":
        return period_key(schedule, start + timedelta(days=7))
    if schedule.kind == "monthly":
        return period_key(schedule, (start + timedelta(days=31)).replace(day=1))
    return period_key(schedule, start + timedelta(days=1))


def is_due(schedule: Schedule, now: datetime, tz: tzinfo) -> bool:
    """Whether the edition of the period ``now`` falls in is due at ``now``."""
    return now >= due_at(schedule, edition_key(now, tz, schedule), tz)


def key_kind(key: str) -> str:
    """The kind of schedule whose period ``key`` names (daily, weekly or monthly)."""
    if "W" in key:
        return "weekly"
    return "monthly" if len(key) == 7 else "daily"


def key_like(kind: str) -> str:
    """A SQL LIKE pattern matching the keys of one kind only (``_``: any one character)."""
    return {"daily": "____-__-__", "weekly": "____-W__", "monthly": "____-__"}[kind]


def previous_key(schedule: Schedule, key: str) -> str:
    """The key of the period before ``key``."""
    return period_key(schedule, first_day(schedule, key) - timedelta(days=1))


def reader_due(schedule: Schedule, key: str, zone: tzinfo) -> datetime:
    """When the edition of ``key`` is due to a reader in ``zone`` (in UTC): ``send_at`` on
    the due date, on that zone's wall clock. A time the clock skips (the spring change) is
    read with the offset before the change, so it falls just after the skipped hour; a time
    the clock shows twice (the autumn change) is its first showing."""
    return due_at(schedule, key, zone).astimezone(UTC)


def period_end(schedule: Schedule, key: str, zone: tzinfo) -> datetime:
    """When the period ``key`` ends in ``zone`` (its following period's first midnight)."""
    start = first_day(schedule, following_key(schedule, key))
    return datetime.combine(start, time(0, 0), tzinfo=zone).astimezone(UTC)


def local_keys(
    schedule: Schedule, now: datetime, home: tzinfo, zones: Iterable[tzinfo]
) -> list[str]:
    """The keys, oldest first, whose edition is due to a reader in one of ``zones`` at
    ``now``: the first zone's moment has come and some zone's period has not ended yet.
    ``home`` is the list's zone (its own key of ``now`` anchors the search: the zones of
    the earth lie within a day or so of each other)."""
    zones = list(zones) or [home]
    here = edition_key(now, home, schedule)
    keys = []
    for key in (previous_key(schedule, here), here, following_key(schedule, here)):
        first = min(reader_due(schedule, key, z) for z in zones)
        last = max(period_end(schedule, key, z) for z in zones)
        if first <= now < last:
            keys.append(key)
    return keys


def next_local_moment(
    schedule: Schedule,
    now: datetime,
    home: tzinfo,
    zones: Iterable[tzinfo],
    skip: Collection[str] = (),
) -> tuple[str, datetime, tzinfo]:
    """The next moment after ``now`` at which an edition (not one of ``skip``) falls due to
    one of ``zones``: its key, the moment (in UTC) and the zone."""
    zones = list(zones) or [home]
    key = edition_key(now, home, schedule)
    moments = []
    for _ in range(4):  # this period's and the next three: a moment after now lies among them
        if key not in skip:
            moments += [(reader_due(schedule, key, z), key, str(z), z) for z in zones]
        key = following_key(schedule, key)
    moment, key, _, zone = min(m for m in moments if m[0] > now)
    return key, moment, zone
