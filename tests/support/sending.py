"""A ledger filled by hand and the send engine run on it, as the send tests use them: an
edition with its recipients enqueued, a plain message per recipient, and the rows that did not
end sent."""

from __future__ import annotations

import asyncio
from datetime import datetime

from digest.models import Edition, NewSubscriber, OutgoingMessage
from digest.send import RetryPolicy, SendReport, SmtpTransport, send_edition
from tests.support.values import NOW


def clock() -> datetime:
    return NOW


def queued_edition(store, count: int) -> tuple[int, dict[int, str]]:
    """An edition of the list "daily" with ``count`` subscribers enqueued."""
    store.ensure_lists([("daily", "Daily")])
    store.add_subscribers(
        [NewSubscriber(email=f"reader{i:02d}@example.org", lists=("daily",)) for i in range(count)],
        NOW,
    )
    emails = {s.id: s.email for s in store.recipients("daily")}
    edition = store.create_edition(
        Edition(list_name="daily", key="2026-11-26", created_at=NOW, sections=())
    )
    assert store.enqueue(edition.id, list(emails), NOW) == count
    return edition.id, emails


def message_for(edition_id: int, subscriber_id: int, email: str) -> OutgoingMessage:
    message_id = f"<{edition_id}.{subscriber_id}@digest.example>"
    raw = (
        f"From: Daily <news@digest.example>\r\nTo: {email}\r\n"
        f"Subject: Daily digest\r\nMessage-ID: {message_id}\r\n"
        "List-Unsubscribe: <https://news.example.com/u/" + "t" * 90 + ">\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Hello {email}\r\n.a line that starts with a dot\r\n..and two\r\nend\r\n"
    ).encode()
    return OutgoingMessage(
        edition_id, subscriber_id, email, "bounces@digest.example", message_id, raw
    )


def builder(edition_id: int, emails: dict[int, str]):
    return lambda subscriber: message_for(edition_id, subscriber.id, subscriber.email)


def send(store, edition_id, emails, transport, **options) -> SendReport:
    # A 4xx is left for the next run unless a test asks for retries within the run.
    options.setdefault("retry", RetryPolicy(budget=0))
    run = send_edition(
        store, edition_id, "daily", builder(edition_id, emails), transport, now=clock, **options
    )
    # A run that never ends is a failure, not a hung test suite.
    return asyncio.run(asyncio.wait_for(run, timeout=60))


def by_email(emails: dict[int, str]) -> dict[str, int]:
    return {email: sid for sid, email in emails.items()}


def ledger(store, edition_id) -> dict[str, tuple[str, int | None, str | None]]:
    """Every row that did not end `sent`: address -> (state, code, reply)."""
    return {
        sid: (state, code, reply)
        for sid, state, code, reply in store.latest_errors(edition_id, limit=1000)
    }


def connect(transport: SmtpTransport) -> None:
    """Open a session with the transport's relay and close it: raises what opening raises."""

    async def open_session():
        async with transport.session():
            pass

    asyncio.run(open_session())
