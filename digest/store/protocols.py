"""What each stage needs of the store: one protocol per stage, and the values they pass.

``Store`` implements every protocol here; a stage that takes one of them rather than the
whole ``Store`` says what it reads and writes, and runs on anything that does that much (a
test's narrowed store, a second database later). No SQL here: the send engine imports this
module, not the queries.

- ``Ledger``: the delivery ledger as the send engine walks it (claims, outcomes, recovery);
- ``Leases``: the registry of live send workers and their leases;
- ``Suppressions``: the addresses never to mail again, as the engine adds to them;
- ``SendStore``: all three, what ``digest.send.engine.send_edition`` takes;
- ``RelayHistory``: what a relay accepted lately, for its hourly limit (``digest.send.relays``);
- ``ArticleStore``: the feeds and articles, as ingest reads and writes them (``digest.ingest``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from digest.models import Article, DeliveryState, Subscriber

if TYPE_CHECKING:
    from digest.store.articles import FeedRecord


@dataclass(frozen=True)
class Claimed:
    """A claimed row and its subscriber as of the claim (None: may no longer be mailed)."""

    row_id: int
    subscriber_id: int
    subscriber: Subscriber | None
    attempt: int = 0  # the row's attempt count as this claim set it: with the run id, a fence


@dataclass(frozen=True)
class Outcome:
    """A state change to write; ``Ledger.write`` commits many in one transaction."""

    row_id: int
    state: DeliveryState
    code: int | None = None
    reply: str | None = None
    message_id: str | None = None
    relay: str | None = None
    attempt: int | None = None  # the claim's attempt: written only while the claim holds


class LeaseLost(Exception):
    """The row is no longer this run's claim (its lease expired and another worker took it)."""


class OutcomeWriter(Protocol):
    """Commits a run's outcomes, many at a time (``digest.store.ledger.LedgerWriter``)."""

    def write(self, outcomes: Sequence[Outcome], now: datetime) -> set[int]:
        """Commit ``outcomes`` in one transaction; return the rows whose ``in_data`` mark
        found the claim gone (their body must not go)."""
        ...

    def close(self) -> None: ...


class Ledger(Protocol):
    """The delivery ledger of an edition, one row per recipient (``digest.store.ledger``)."""

    def recover(
        self, edition_id: int, now: datetime, *, exclusive: bool = True
    ) -> dict[str, int]: ...

    def claim(
        self,
        edition_id: int,
        list_name: str,
        limit: int,
        now: datetime,
        run_id: str,
        *,
        resend_unknown: bool = False,
        row_ids: Sequence[int] | None = None,
    ) -> list[Claimed]: ...

    def claimable(
        self,
        edition_id: int,
        run_id: str,
        *,
        resend_unknown: bool = False,
        now: datetime | None = None,
    ) -> bool: ...

    def in_flight(self, edition_id: int, *, other_than: str) -> int: ...

    def due_count(
        self, edition_id: int, *, resend_unknown: bool = False, now: datetime | None = None
    ) -> int: ...

    def ledger_writer(self, run_id: str | None = None) -> OutcomeWriter: ...

    def release(self, run_id: str, now: datetime) -> int: ...

    def hard_bounces(self, subscriber_id: int) -> int: ...

    def counts(self, edition_id: int) -> dict[str, int]: ...


class Leases(Protocol):
    """The live send workers, each holding a lease (``digest.store.workers``)."""

    def register_worker(
        self, run_id: str, edition_id: int, relays: Iterable[str], lease: float, now: datetime
    ) -> None: ...

    def renew_worker(self, run_id: str, lease: float) -> bool: ...

    def unregister_worker(self, run_id: str) -> None: ...

    def live_workers(self, edition_id: int | None = None) -> list[dict]: ...


class Suppressions(Protocol):
    def suppress(self, email: str, reason: str, now: datetime) -> None: ...


class SendStore(Ledger, Leases, Suppressions, Protocol):
    """Everything the send engine touches in the store."""


class RelayHistory(Protocol):
    def sent_since(self, relay: str, since: datetime) -> int: ...


class ArticleStore(Protocol):
    """The feeds and the articles, as ingest keeps them (``digest.store.articles``)."""

    def sync_sections(self, sections: Iterable[tuple[str, str, Sequence[str]]]) -> None: ...

    def register_feeds(self, feeds: Iterable[tuple[str, str]]) -> None: ...

    def feeds(self) -> list[FeedRecord]: ...

    def record_feed(
        self,
        url: str,
        *,
        status: str,
        now: datetime,
        error: str | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        entries: int | None = None,
        newest_entry_at: datetime | None = None,
    ) -> None: ...

    def save_articles(self, items: Iterable[Article], now: datetime) -> tuple[int, int]: ...

    def article_sections(self) -> dict[str, str]: ...
