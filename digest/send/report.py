"""What a send did: one report, filled by the engine, summed over workers, finished by the
pipeline and printed by `digest send` (``--json`` prints ``as_dict()``, key for key)."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field

from digest.exits import SEVERITY, ExitCode
from digest.models import OUTCOME_STATES, DeliveryState


class SendStatus(enum.StrEnum):
    """How a `digest send` ended; each status has its exit code (``SendReport.exit_code``)."""

    complete = "complete"  # every due message delivered
    skipped = "skipped"  # nothing new, or no one to send to: nothing sent, no edition frozen
    incomplete = "incomplete"  # some deferred or of unknown outcome: run again later
    failed = "failed"  # some recipients failed permanently
    stopped = "stopped"  # no relay was usable: the next run resumes
    check_failed = "check-failed"  # digest check found errors: nothing sent
    locked = "locked"  # another run holds the list: this one sent nothing
    dry_run = "dry-run"  # every message composed, nothing sent
    not_due = "not-due"  # before the period's send time, or its edition is sent: nothing to do


_EXIT_CODES = {
    SendStatus.stopped: ExitCode.STOPPED,
    SendStatus.incomplete: ExitCode.INCOMPLETE,
    SendStatus.failed: ExitCode.FAILED,
    SendStatus.check_failed: ExitCode.CHECK,
    SendStatus.locked: ExitCode.LOCKED,
}


# `list` is a field of SendReport (a JSON key): its other fields' types are named here.
Lines = list[str]
Records = list[dict]
Reports = list["SendReport"]


def _reports() -> Reports:
    return []


@dataclass
class SendReport:
    """One run of a list's edition: what it did and where the edition stands after it.

    The engine counts the rows it handled (``tally``); several workers' reports are added up
    (``add``); the pipeline sets the rest (the list, the edition, the status, warnings).
    """

    list: str = ""  # the list's name (in this class body `list` is this field)
    edition: str | None = None  # the edition's key, e.g. "2026-11-26"
    status: SendStatus = SendStatus.complete
    articles: dict[str, int] = field(default_factory=dict)  # per section
    recipients: int = 0  # the edition's ledger rows (a dry run: the rows a send would handle)
    # The rows this run handled, by outcome.
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    already_sent: int = 0  # sent by earlier runs
    variants: int = 0  # distinct section sets composed
    bytes: int = 0  # of the messages delivered (a dry run: of those composed)
    elapsed: float = 0.0
    rate: float = 0.0  # messages accepted by the relays per second of the run
    stopped: str | None = None  # why the run stopped early (no relay usable), else None
    transport: str = ""
    message: str = ""
    limit: float | None = None  # the configured rate (messages/s, all relays), None: no limit
    retries: int = 0  # deferred messages tried again within the run
    suppressed: int = 0  # addresses suppressed after "no such user" (5.1.x)
    requeued_on_start: int = 0  # left `sending` by an interrupted run: back in the queue
    unknown_on_start: int = 0  # left `in_data` by an interrupted run: now unknown
    taken_over: int = 0  # rows of workers whose lease expired, recovered during the run
    lost_leases: int = 0  # rows this run had claimed that another worker took over
    workers: Records = field(default_factory=Records)  # per worker process (--workers N)
    warnings: Lines = field(default_factory=Lines)
    feed_warnings: Lines = field(default_factory=Lines)  # feeds failing for days
    notes: Lines = field(default_factory=Lines)  # what trimming left out to fit the budget
    findings: Records = field(default_factory=Records)  # digest check's, errors first
    counts: dict[str, int] = field(default_factory=dict)  # the ledger's rows by state after it
    # A list delivering in each reader's zone: rows whose moment has not come, and when the
    # next comes ("2026-12-01 14:15 UTC (06:15 America/Los_Angeles)").
    waiting: int = 0
    next_due: str | None = None
    # An older edition of the list still in flight, sent by the same run (its report first).
    earlier: Reports = field(default_factory=_reports)

    # What one worker's report adds to the others' (--workers N).
    COUNTERS = (
        "sent",
        "deferred",
        "failed",
        "unknown",
        "skipped",
        "bytes",
        "retries",
        "suppressed",
        "requeued_on_start",
        "unknown_on_start",
        "taken_over",
        "lost_leases",
    )

    def tally(self, state: DeliveryState, size: int = 0) -> None:
        """Count one row's outcome; ``size``: the bytes of its message, counted if sent."""
        if state in OUTCOME_STATES:
            setattr(self, state.value, getattr(self, state.value) + 1)
        if state is DeliveryState.sent:
            self.bytes += size

    @property
    def done(self) -> int:
        return self.sent + self.deferred + self.failed + self.unknown + self.skipped

    def counters(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.COUNTERS}

    def add(self, counters: dict[str, int]) -> None:
        """Add another report's ``counters()`` to this one's."""
        for name in self.COUNTERS:
            setattr(self, name, getattr(self, name) + counters.get(name, 0))

    @property
    def exit_code(self) -> ExitCode:
        own = _EXIT_CODES.get(self.status, ExitCode.OK)
        return max([own, *(r.exit_code for r in self.earlier)], key=SEVERITY.index)

    def as_dict(self) -> dict:
        return asdict(self)
