"""Import and export files of subscribers, and the rows they are made of.

Import files are CSV (a header row; ``email`` required; ``name``, ``lists``, ``sections``,
``frequency``, ``status``, ``consent``, ``consent_at``, ``consent_ip``, ``timezone`` optional)
or JSON lines (``.jsonl``, ``.ndjson``) with the same keys. ``lists``, ``sections`` and
``frequency`` hold semicolon-separated names:

- a list entry is ``daily`` (subscribed), or ``daily:paused``, ``daily:unsubscribed``,
  ``daily:pending`` for a subscription in that state;
- a section entry ``launch-pad`` applies to every list; ``weekly:launch-pad`` to one list
  only (an export writes that form when a subscriber's lists have different sections).
  Section slugs match whatever their case.
- a frequency entry ``weekly`` applies to every list of the row; ``daily:weekly`` to one list
  only; each must be one the list offers (an empty cell: each list's own schedule).

Other tools' exports are read too: Mailchimp's (``Email Address``, ``First Name``,
``Last Name``, ``CONFIRM_TIME``/``OPTIN_TIME``, ``CONFIRM_IP``/``OPTIN_IP``) and listmonk's
(``email``, ``name``, ``status`` enabled/disabled/blocklisted).

Reading never stops at a bad row: every bad row (an oversized field too) is reported with
its line number and reason, and the good rows are returned for the caller to commit in one
transaction. An export is in the import format, every state, list and consent field
included, so export then import then export gives the same bytes. In CSV, a cell that a
spreadsheet would run as a formula (starting with ``= + - @``, a tab or a CR) is written with
a leading ``'``, which reading takes off again.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from digest.audience.addresses import clean_name, email_key, normalize_email
from digest.errors import SubscriberError
from digest.models import Membership, NewSubscriber, SubscriberRecord, SubscriberStatus

COLUMNS = (
    "email",
    "name",
    "lists",
    "sections",
    "frequency",
    "status",
    "consent",
    "consent_at",
    "consent_ip",
    "timezone",
)
_STATE_WORDS = {
    "active": ("active", False),
    "paused": ("active", True),
    "unsubscribed": ("unsubscribed", False),
    "pending": ("pending", False),
}
# Other tools' words for a status: Mailchimp's and listmonk's.
_STATUS_WORDS = {
    "subscribed": "active",
    "enabled": "active",
    "cleaned": "bounced",
    "disabled": "unsubscribed",
    "blocklisted": "unsubscribed",
    "blacklisted": "unsubscribed",
}
# Other tools' column names (lower case) for ours; first, last names are joined.
_HEADER_WORDS = {
    "email address": "email",
    "e-mail": "email",
    "e-mail address": "email",
    "first name": "first_name",
    "last name": "last_name",
    "fname": "first_name",
    "lname": "last_name",
    "confirm_time": "confirm_time",
    "optin_time": "optin_time",
    "confirm_ip": "confirm_ip",
    "optin_ip": "optin_ip",
}
FIELD_LIMIT = csv.field_size_limit()  # 131,072 characters: longer is a bad row
_FORMULA = re.compile(r"'*[=+\-@\t\r]")


@dataclass(frozen=True)
class Reject:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def _split(value: str | None) -> list[str]:
    return [n.strip() for n in (value or "").replace(",", ";").split(";") if n.strip()]


def _known_name(name: str, known: Collection[str], what: str) -> str:
    """``name`` as spelled in ``known``, whatever its case; SubscriberError if unknown."""
    if name in known:
        return name
    found = next((k for k in known if k.lower() == name.lower()), None)
    if found is None:
        raise SubscriberError(f"unknown {what} {name!r} (known: {', '.join(sorted(known))})")
    return found


def parse_names(value: str | None, known: Collection[str], what: str) -> tuple[str, ...]:
    """Semicolon- (or comma-) separated names, each checked against ``known``."""
    return tuple(dict.fromkeys(_known_name(name, known, what) for name in _split(value)))


def parse_status(value: str | None) -> SubscriberStatus:
    value = (value or "").strip().lower() or "active"
    value = _STATUS_WORDS.get(value, value)
    try:
        return SubscriberStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in SubscriberStatus)
        raise SubscriberError(f"unknown status {value!r} (one of {allowed})") from None


def parse_memberships(
    lists_value: str | None,
    sections_value: str | None,
    *,
    lists: Collection[str],
    sections: Collection[str],
    default_lists: tuple[str, ...],
) -> tuple[Membership, ...]:
    """The subscriptions a row asks for (see the module docstring for the notation)."""
    states: dict[str, str] = {}
    for entry in _split(lists_value):
        name, _, word = entry.partition(":")
        if name not in lists:
            raise SubscriberError(f"unknown list {name!r} (known: {', '.join(sorted(lists))})")
        if word and word not in _STATE_WORDS:
            raise SubscriberError(
                f"unknown list state {word!r} in {entry!r} (one of {', '.join(_STATE_WORDS)})"
            )
        states[name] = word or "active"
    if not states:
        states = dict.fromkeys(default_lists, "active")
    common: set[str] = set()
    per_list: dict[str, set[str]] = {}
    for entry in _split(sections_value):
        scope, _, slug = entry.rpartition(":")
        slug = _known_name(slug, sections, "section")
        if scope and scope not in states:
            raise SubscriberError(f"section {entry!r} names a list the row is not on")
        (per_list.setdefault(scope, set()) if scope else common).add(slug)
    out = []
    for name, word in states.items():
        chosen = per_list.get(name) or common
        state, paused = _STATE_WORDS[word]
        out.append(Membership(name, state, paused, frozenset(chosen) if chosen else None))
    return tuple(out)


def parse_frequencies(
    value: str | None,
    memberships: tuple[Membership, ...],
    offered: Mapping[str, Sequence[str]],
) -> tuple[Membership, ...]:
    """The memberships with the frequencies a ``frequency`` cell names (see the module
    docstring); ``offered`` holds each list's frequencies, its own schedule's first."""
    names = {m.list for m in memberships}
    common: str | None = None
    per_list: dict[str, str] = {}
    for entry in _split(value):
        scope, _, word = entry.rpartition(":")
        if scope and scope not in names:
            raise SubscriberError(f"frequency {entry!r} names a list the row is not on")
        word = word.strip().lower()
        for name in [scope] if scope else sorted(names):
            allowed = offered.get(name, ())
            if word not in allowed:
                raise SubscriberError(
                    f"frequency {word!r} is not one list {name} offers ({', '.join(allowed)})"
                )
        if scope:
            per_list[scope] = word
        else:
            common = word
    out = []
    for m in memberships:
        chosen = per_list.get(m.list, common)
        own = next(iter(offered.get(m.list, ())), None)
        out.append(replace(m, frequency=None if chosen == own else chosen))
    return tuple(out)


def _parse_time(value: str | None) -> datetime | None:
    if not value or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SubscriberError(f"consent_at {value!r} is not an ISO 8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_zone(value: str | None) -> str | None:
    """An IANA time zone name as stored (None for an empty value); SubscriberError otherwise."""
    import zoneinfo

    name = (value or "").strip()
    if not name:
        return None
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        shown = name if name.isprintable() and len(name) <= 64 else repr(name[:64])
        raise SubscriberError(
            f"timezone {shown!r} is not an IANA time zone such as Europe/Oslo"
        ) from None
    return name


def new_subscriber(
    row: dict,
    *,
    lists: Collection[str],
    sections: Collection[str],
    default_lists: tuple[str, ...],
    source: str,
    line: int = 0,
    offered: Mapping[str, Sequence[str]] | None = None,
) -> NewSubscriber:
    """One validated subscriber from a row of strings (CLI arguments or a file row);
    ``offered``: each list's frequencies, its own schedule's first (for a ``frequency``).

    A ``pending`` row (a sign-up never confirmed) gets no consent it did not have: no
    default source, no time."""
    memberships = parse_memberships(
        row.get("lists"),
        row.get("sections"),
        lists=lists,
        sections=sections,
        default_lists=default_lists,
    )
    given = "frequency" in row and offered is not None
    if given and offered is not None:
        memberships = parse_frequencies(row.get("frequency"), memberships, offered)
    status = parse_status(row.get("status"))
    ip = (row.get("consent_ip") or "").strip()[:64] or None
    consent = (row.get("consent") or "").strip()[:200]
    if not consent and status is not SubscriberStatus.pending:
        consent = source
    return NewSubscriber(
        email=normalize_email(row.get("email") or ""),
        name=clean_name(row.get("name")),
        lists=tuple(m.list for m in memberships),
        sections=memberships[0].sections if memberships else None,
        status=status,
        consent_source=clean_name(consent) or None,
        consent_at=_parse_time(row.get("consent_at")),
        consent_ip=clean_name(ip) or None,
        memberships=memberships,
        line=line,
        frequency_given=given,
        timezone=parse_zone(row.get("timezone")),
    )


def _canonical(row: dict) -> dict:
    """A row with other tools' column names read as ours."""
    row = {_HEADER_WORDS.get(k, k): v for k, v in row.items()}
    if not row.get("name") and (row.get("first_name") or row.get("last_name")):
        row["name"] = " ".join(
            p.strip() for p in (row.get("first_name"), row.get("last_name")) if p and p.strip()
        )
    for ours, theirs in (
        ("consent_at", ("confirm_time", "optin_time")),
        ("consent_ip", ("confirm_ip", "optin_ip")),
    ):
        if not row.get(ours):
            row[ours] = next((row[t] for t in theirs if row.get(t)), row.get(ours))
    return row


def neutralize(cell: str) -> str:
    """A CSV cell a spreadsheet shows as text: a leading ``'`` before a formula's start."""
    return "'" + cell if _FORMULA.match(cell) else cell


def restore(cell: str) -> str:
    """The cell ``neutralize`` was given (cells from elsewhere pass unchanged)."""
    return cell[1:] if cell.startswith("'") and _FORMULA.match(cell[1:]) else cell


def _json_rows(text: str) -> Iterator[tuple[int, dict | str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"not JSON: {exc.msg}"
            continue
        if not isinstance(obj, dict):
            yield number, "not a JSON object"
            continue
        obj = {str(k).strip().lower(): v for k, v in obj.items()}
        for key in ("lists", "sections", "frequency"):
            if isinstance(obj.get(key), list):
                obj[key] = ";".join(str(v) for v in obj[key])
        yield number, _canonical({k: (v if v is None else str(v)) for k, v in obj.items()})


def _rows(path: Path) -> Iterator[tuple[int, dict | str]]:
    """(line number, row dict) per data row; a string instead of a dict is a parse error."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        yield from _json_rows(text)
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [_HEADER_WORDS.get(h.strip().lower(), h.strip().lower()) for h in next(reader, [])]
    except csv.Error as exc:
        raise SubscriberError(f"{path}: the header row cannot be read: {exc}") from None
    if "email" not in header:
        raise SubscriberError(
            f"{path}: the header row has no 'email' column",
            "the first line must name the columns, e.g. email,name,sections",
        )
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # an oversized field: that row alone is bad
            yield reader.line_num, f"cannot be read: {exc}"
            continue
        if not cells:
            continue
        if len(cells) > len(header):
            yield reader.line_num, (f"{len(cells)} fields where the header has {len(header)}")
            continue
        cells += [""] * (len(header) - len(cells))  # missing trailing cells are empty
        yield (
            reader.line_num,
            _canonical({k: restore(v) for k, v in zip(header, cells, strict=True)}),
        )


def read_file(
    path: Path,
    *,
    lists: Collection[str],
    sections: Collection[str],
    default_lists: tuple[str, ...],
    offered: Mapping[str, Sequence[str]] | None = None,
) -> tuple[list[NewSubscriber], list[Reject]]:
    """Parse an import file into valid subscribers and rejected rows."""
    if not path.is_file():
        raise SubscriberError(f"{path}: no such file")
    good: list[NewSubscriber] = []
    rejects: list[Reject] = []
    seen: dict[str, int] = {}
    source = f"import:{path.name}"
    try:
        for number, row in _rows(path):
            if isinstance(row, str):
                rejects.append(Reject(number, row))
                continue
            try:
                item = new_subscriber(
                    row,
                    lists=lists,
                    sections=sections,
                    default_lists=default_lists,
                    source=source,
                    line=number,
                    offered=offered,
                )
            except SubscriberError as exc:
                rejects.append(Reject(number, str(exc)))
                continue
            if not item.lists:
                rejects.append(
                    Reject(
                        number,
                        "no list: this newsletter has several lists, name them in a 'lists' column",
                    )
                )
                continue
            key = email_key(item.email)
            if key in seen:
                rejects.append(Reject(number, f"{item.email} repeats line {seen[key]}"))
                continue
            seen[key] = number
            good.append(item)
    except UnicodeDecodeError as exc:
        raise SubscriberError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
            "save the file as UTF-8 and import it again",
        ) from None
    return good, rejects


# -- export -----------------------------------------------------------------------------------


def _lists_cell(record: SubscriberRecord) -> list[str]:
    words = {
        ("active", False): "",
        ("active", True): ":paused",
        ("unsubscribed", False): ":unsubscribed",
        ("unsubscribed", True): ":unsubscribed",
        ("pending", False): ":pending",
        ("pending", True): ":pending",
    }
    return [m.list + words[(m.state, m.paused)] for m in record.memberships]


def _sections_cell(record: SubscriberRecord) -> list[str]:
    chosen = {m.sections for m in record.memberships}
    if len(chosen) <= 1:
        only = next(iter(chosen), None)
        return sorted(only) if only else []
    return [f"{m.list}:{slug}" for m in record.memberships for slug in sorted(m.sections or ())]


def _frequency_cell(record: SubscriberRecord) -> list[str]:
    chosen = {m.frequency for m in record.memberships}
    if len(chosen) <= 1:
        only = next(iter(chosen), None)
        return [only] if only else []
    return [f"{m.list}:{m.frequency}" for m in record.memberships if m.frequency]


def as_dict(record: SubscriberRecord) -> dict:
    """A subscriber as the JSON of ``list`` and ``export``: always ``email`` and ``status``."""
    first = record.memberships[0].sections if record.memberships else None
    return {
        "email": record.email,
        "name": record.name,
        "status": record.status.value,
        "lists": _lists_cell(record),
        "sections": sorted(first) if first else None,
        "frequency": _frequency_cell(record),
        "consent": record.consent_source,
        "consent_at": record.consent_at.isoformat() if record.consent_at else None,
        "consent_ip": record.consent_ip,
        "timezone": record.timezone,
    }


def export_row(record: SubscriberRecord) -> dict:
    """A subscriber in the import format (CSV cells, or JSON lines with lists)."""
    return as_dict(record) | {"sections": _sections_cell(record)}


def write_csv(records: Iterable[SubscriberRecord], out: IO[str]) -> int:
    """Export in the import format, so that an export imports back unchanged; cells that
    would run as a formula in a spreadsheet are neutralized."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for record in records:
        row = export_row(record)
        writer.writerow(
            [
                neutralize(
                    ""
                    if row[c] is None
                    else ";".join(row[c])
                    if isinstance(row[c], list)
                    else str(row[c])
                )
                for c in COLUMNS
            ]
        )
        count += 1
    return count


def write_jsonl(records: Iterable[SubscriberRecord], out: IO[str]) -> int:
    count = 0
    for record in records:
        out.write(json.dumps(export_row(record), ensure_ascii=False) + "\n")
        count += 1
    return count


def detail(record: SubscriberRecord, suppressed: str | None) -> dict:
    """Everything ``show`` prints about one subscriber."""
    return as_dict(record) | {
        "subscriptions": {
            m.list: None if m.sections is None else sorted(m.sections) for m in record.memberships
        },
        "memberships": {m.list: {"state": m.state, "paused": m.paused} for m in record.memberships},
        # The lists whose reader chose a frequency other than the list's own schedule.
        "frequencies": {m.list: m.frequency for m in record.memberships if m.frequency},
        "soft_bounces": round(record.soft_bounces, 2),
        "suppressed": suppressed,
    }
