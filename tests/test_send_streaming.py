"""A list of any size is sent without ever being held in memory whole: recipients go into the
ledger batch by batch, and a run reads them back a claim at a time.

Every statement the store runs is recorded (a SQLAlchemy cursor event on the real engine):
a statement reading the subscribers without a LIMIT, or writing more rows than a batch,
would mean a whole list in memory.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from digest.models import Edition, NewSubscriber, SubscriberStatus
from digest.store import ledger
from tests.support.cli import load_sample, readers_csv, run, sample_settings, set_settings
from tests.support.values import NOW

BATCH = 40
_READS_SUBSCRIBERS = re.compile(r"(?is)^\s*SELECT\b.*\b(FROM|JOIN)\s+subscribers\b")


@contextmanager
def statements(engine: type[Engine] | Engine):
    """Every statement run on ``engine`` (or on every engine): (sql, rows of parameters,
    parameters)."""
    seen: list[tuple[str, int, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append((statement, len(parameters) if executemany else 1, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def assert_streamed(seen: list[tuple[str, int, object]]) -> None:
    reads = [sql for sql, _, _ in seen if _READS_SUBSCRIBERS.match(sql)]
    assert reads, "the subscribers were never read"
    unbounded = [sql for sql in reads if not re.search(r"(?i)\bLIMIT\b", sql)]
    assert not unbounded, f"read the subscribers without a LIMIT: {unbounded[0][:200]}"
    assert max(rows for _, rows, _ in seen) <= BATCH


def test_enqueue_fills_the_ledger_in_one_statement_with_no_subscriber_read_back(store, monkeypatch):
    monkeypatch.setattr(ledger, "ENQUEUE_BATCH", BATCH)
    store.ensure_lists([("daily", "Daily"), ("weekly", "Weekly")])
    count = 7 * BATCH + 3
    store.add_subscribers(
        [NewSubscriber(email=f"reader{i:04d}@example.org", lists=("daily",)) for i in range(count)],
        NOW,
    )
    store.add_subscribers([NewSubscriber(email="other@example.org", lists=("weekly",))], NOW)
    store.suppress("reader0005@example.org", "complaint", NOW)
    store.set_status("reader0100@example.org", SubscriberStatus.unsubscribed, NOW)
    paused = store.record("reader0200@example.org").id
    store.set_membership(paused, "daily", NOW, paused=True)
    expected = {s.id for s in store.recipients("daily")}
    assert len(expected) == count - 3
    edition = store.create_edition(
        Edition(list_name="daily", key="2026-11-26", created_at=NOW, sections=())
    )

    with statements(store.engine) as seen:
        assert store.enqueue_list(edition.id, "daily", NOW) == len(expected)
    # One INSERT ... SELECT on either engine: no subscriber comes back to this process.
    inserts = [sql for sql, _, _ in seen if re.match(r"(?is)\s*INSERT INTO deliveries", sql)]
    assert len(inserts) == 1 and re.search(r"(?i)\bSELECT\b", inserts[0])
    assert not [sql for sql, _, _ in seen if _READS_SUBSCRIBERS.match(sql)]
    claimed = store.claim(edition.id, "daily", 10 * count, NOW, "run")
    assert {c.subscriber_id for c in claimed} == expected
    assert store.enqueue_list(edition.id, "daily", NOW) == 0  # created once, never twice
    assert {s.id for s in store.recipient_stream("daily")} == expected


def test_a_send_run_reads_the_list_a_batch_at_a_time(db_url, monkeypatch, tmp_path):
    settings = sample_settings(
        db_url, DIGEST_OUTBOX=str(tmp_path / "outbox"), DIGEST_SEND_BATCH="10"
    )
    set_settings(monkeypatch, settings)
    monkeypatch.setattr(ledger, "ENQUEUE_BATCH", BATCH)
    readers = 2 * BATCH + 5
    load_sample(readers_csv(tmp_path, readers))

    # The dry run first: once the edition is sent, a run (dry or not) has nothing to do.
    with statements(Engine) as seen:
        run("send", "--dry-run", "--json")
    assert_streamed(seen)
    with statements(Engine) as seen:
        result = run("send", "--json")
    assert json.loads(result.stdout)["sent"] == readers
    assert_streamed(seen)


@pytest.mark.sqlite_only
def test_a_claim_reads_a_batch_not_every_remaining_row(store):
    # Each claim must stop after its batch: sorting every remaining row per claim makes a
    # run of N rows cost N squared (minutes for a list of 200,000).
    store.ensure_lists([("daily", "Daily")])
    store.add_subscribers(
        [NewSubscriber(email=f"reader{i:03d}@example.org", lists=("daily",)) for i in range(30)],
        NOW,
    )
    edition = store.create_edition(
        Edition(list_name="daily", key="2026-11-26", created_at=NOW, sections=())
    )
    store.enqueue_list(edition.id, "daily", NOW)
    with statements(store.engine) as seen:
        assert len(store.claim(edition.id, "daily", 10, NOW, "run", resend_unknown=True)) == 10
    reads = [(sql, params) for sql, _, params in seen if sql.lstrip().startswith("SELECT")]
    with store.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        for sql, params in reads:
            plan = " ".join(row[-1] for row in raw.execute("EXPLAIN QUERY PLAN " + sql, params))
            assert "TEMP B-TREE" not in plan, plan
