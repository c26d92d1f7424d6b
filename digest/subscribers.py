"""Subscribers: address validation, section preferences, import and export files.

Import files are CSV (a header row; ``email`` required; ``name``, ``lists``, ``sections``,
``status`` optional; ``lists`` and ``sections`` hold semicolon-separated names) or JSON lines
with the same keys. Reading never stops at a bad row: every bad row is reported with its line
number and reason, and the good rows are returned for the caller to commit in one transaction.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from email_validator import EmailNotValidError, validate_email

from digest.errors import SubscriberError
from digest.models import Subscriber, SubscriberStatus
from digest.store.subscribers import NewSubscriber

COLUMNS = ("email", "name", "lists", "sections", "status")
MAX_NAME = 200


@dataclass(frozen=True)
class Reject:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def normalize_email(address: str) -> str:
    """A valid address in normal form (internationalized addresses allowed, no DNS lookup)."""
    address = (address or "").strip()
    if not address:
        raise SubscriberError("the email address is empty")
    if any(ch in address for ch in "\r\n\t"):
        raise SubscriberError(f"{address!r} is not a valid email address: it holds a line break")
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise SubscriberError(f"{address!r} is not a valid email address: {exc}") from None


def clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise SubscriberError(f"name {name!r} holds a line break or control character")
    if len(name) > MAX_NAME:
        raise SubscriberError(f"name is longer than {MAX_NAME} characters")
    return name


def parse_names(value: str | None, known: Collection[str], what: str) -> tuple[str, ...]:
    """Semicolon- (or comma-) separated names, each checked against ``known``."""
    names = [n.strip() for n in (value or "").replace(",", ";").split(";") if n.strip()]
    for name in names:
        if name not in known:
            raise SubscriberError(
                f"unknown {what} {name!r} (known: {', '.join(sorted(known))})")
    return tuple(dict.fromkeys(names))


def parse_status(value: str | None) -> SubscriberStatus:
    value = (value or "").strip().lower() or "active"
    try:
        return SubscriberStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in SubscriberStatus)
        raise SubscriberError(f"unknown status {value!r} (one of {allowed})") from None


def new_subscriber(row: dict, *, lists: Collection[str], sections: Collection[str],
                   default_lists: tuple[str, ...], source: str) -> NewSubscriber:
    """One validated subscriber from a row of strings (CLI arguments or a file row)."""
    chosen_lists = parse_names(row.get("lists"), lists, "list") or default_lists
    chosen_sections = parse_names(row.get("sections"), sections, "section")
    return NewSubscriber(
        email=normalize_email(row.get("email") or ""),
        name=clean_name(row.get("name")),
        lists=chosen_lists,
        sections=frozenset(chosen_sections) if chosen_sections else None,
        status=parse_status(row.get("status")),
        consent_source=(row.get("consent") or source).strip()[:200] or source,
    )


def _rows(path: Path) -> Iterable[tuple[int, dict | str]]:
    """(line number, row dict) per data row; a string instead of a dict is a parse error."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
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
            for key in ("lists", "sections"):
                if isinstance(obj.get(key), list):
                    obj[key] = ";".join(str(v) for v in obj[key])
            yield number, {k: (v if v is None else str(v)) for k, v in obj.items()}
        return
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "email" not in header:
        raise SubscriberError(f"{path}: the header row has no 'email' column",
                              "the first line must name the columns, e.g. email,name,sections")
    reader.fieldnames = header
    for row in reader:
        if None in row:
            yield reader.line_num, (f"{len(header) + len(row[None])} fields where the header "
                                    f"has {len(header)}")
            continue
        yield reader.line_num, {k: (v or "") for k, v in row.items()}


def read_file(path: Path, *, lists: Collection[str], sections: Collection[str],
              default_lists: tuple[str, ...]) -> tuple[list[NewSubscriber], list[Reject]]:
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
                item = new_subscriber(row, lists=lists, sections=sections,
                                      default_lists=default_lists, source=source)
            except SubscriberError as exc:
                rejects.append(Reject(number, str(exc)))
                continue
            key = item.email.casefold()
            if key in seen:
                rejects.append(Reject(number, f"{item.email} repeats line {seen[key]}"))
                continue
            seen[key] = number
            good.append(item)
    except UnicodeDecodeError as exc:
        raise SubscriberError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                              "save the file as UTF-8 and import it again") from None
    return good, rejects


def write_csv(subscribers: Iterable[Subscriber], out: TextIO) -> int:
    """Export in the import format, so that an export imports back unchanged."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for sub in subscribers:
        sections = ";".join(sorted(sub.sections)) if sub.sections else ""
        writer.writerow([sub.email, sub.name, ";".join(sub.lists), sections, sub.status.value])
        count += 1
    return count


def as_dict(sub: Subscriber) -> dict:
    return {"email": sub.email, "name": sub.name, "status": sub.status.value,
            "lists": list(sub.lists),
            "sections": None if sub.sections is None else sorted(sub.sections)}
