"""Several send workers on one edition: leases, fenced claims, rate shares, take-over.

The end-to-end tests run real `digest send` processes against one recording SMTP server and
one PostgreSQL database (they need DIGEST_TEST_POSTGRES_URL, as CI gives); the lease and
fence rules below them are checked on both engines.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select, update

from digest.models import DeliveryState
from digest.send import SmtpTransport, send_edition
from digest.send.pacing import RateLimiter
from digest.store import open_store, schema
from digest.store.ledger import LedgerWriter
from digest.store.protocols import Outcome
from tests.support.cli import (
    child_env,
    load_sample,
    readers_csv,
    run,
    sample_settings,
    set_settings,
)
from tests.support.sending import builder, queued_edition
from tests.support.smtpd import smtp_server
from tests.support.values import NOW, ROOT


def expire(store, run_id: str) -> None:
    """Make a worker's lease run out now (as if its heartbeat had stopped long ago)."""
    with store.engine.begin() as conn:
        conn.execute(
            update(schema.send_workers)
            .where(schema.send_workers.c.run_id == run_id)
            .values(expires_at=0)
        )


# -- leases and fences, on both engines -------------------------------------------------------


def test_a_live_workers_rows_stay_its_own_an_expired_ones_are_taken_over(store):
    edition_id, _ = queued_edition(store, 4)
    store.register_worker("a", edition_id, ["relay"], 60, NOW)
    mine = store.claim(edition_id, "daily", 3, NOW, "a")
    writer = LedgerWriter(store.engine, "a")
    writer.write(
        [
            Outcome(
                mine[0].row_id,
                DeliveryState.in_data,
                message_id="<m0@x>",
                relay="relay",
                attempt=mine[0].attempt,
            )
        ],
        NOW,
    )

    assert store.recover(edition_id, NOW, exclusive=False) == {"requeued": 0, "unknown": 0}
    assert store.in_flight(edition_id, other_than="b") == 3

    expire(store, "a")
    assert store.renew_worker("a", 60) is False  # an expired lease is never renewed
    assert store.recover(edition_id, NOW, exclusive=False) == {"requeued": 2, "unknown": 1}
    assert store.live_workers() == []  # the dead worker is forgotten

    # Its rows are claimed anew (attempt 2); the dead worker's writes now match nothing.
    store.register_worker("b", edition_id, ["relay"], 60, NOW)
    theirs = {c.row_id: c for c in store.claim(edition_id, "daily", 10, NOW, "b")}
    assert mine[1].row_id in theirs and theirs[mine[1].row_id].attempt == 2
    lost = writer.write(
        [
            Outcome(
                mine[1].row_id, DeliveryState.in_data, message_id="<m1@x>", attempt=mine[1].attempt
            ),
            Outcome(mine[2].row_id, DeliveryState.sent, attempt=mine[2].attempt),
        ],
        NOW,
    )
    writer.close()
    assert lost == {mine[1].row_id}  # the body must not go
    states = store.counts(edition_id)
    assert states == {"sending": 3, "unknown": 1}, states


def count_row_writes(store) -> None:
    """Record every UPDATE of a ledger row in ``row_writes`` (a real trigger, PostgreSQL)."""
    with store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE row_writes (id integer)")
        conn.exec_driver_sql(
            "CREATE FUNCTION note_write() RETURNS trigger AS $$ BEGIN "
            "INSERT INTO row_writes VALUES (NEW.id); RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER note_write AFTER UPDATE ON deliveries "
            "FOR EACH ROW EXECUTE FUNCTION note_write()"
        )


def test_on_postgresql_a_fenced_group_is_one_statement_writing_each_row_once(store):
    from sqlalchemy import event

    if store.dialect != "postgresql":
        pytest.skip("the one-statement write is PostgreSQL's (SQLite runs hold the list's lock)")
    edition_id, _ = queued_edition(store, 5)
    store.register_worker("a", edition_id, ["relay"], 60, NOW)
    rows = store.claim(edition_id, "daily", 5, NOW, "a")
    stolen = rows[4]
    with store.engine.begin() as conn:  # another worker took this one over
        conn.execute(
            update(schema.deliveries)
            .where(schema.deliveries.c.id == stolen.row_id)
            .values(run_id="b", attempts=stolen.attempt + 1)
        )
    count_row_writes(store)
    statements: list[str] = []

    def note(conn, cursor, statement, *rest) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", note)
    writer = LedgerWriter(store.engine, "a")
    lost = writer.write(
        [
            Outcome(
                r.row_id,
                DeliveryState.in_data,
                message_id=f"<{i}@x>",
                relay="relay",
                attempt=r.attempt,
            )
            for i, r in enumerate(rows[:2])
        ]
        + [
            Outcome(
                rows[2].row_id,
                DeliveryState.sent,
                250,
                "2.0.0 ok",
                relay="relay",
                attempt=rows[2].attempt,
            ),
            Outcome(
                rows[3].row_id,
                DeliveryState.deferred,
                451,
                "4.7.1 later",
                relay="relay",
                attempt=rows[3].attempt,
            ),
            Outcome(
                stolen.row_id, DeliveryState.in_data, message_id="<s@x>", attempt=stolen.attempt
            ),
        ],
        NOW,
    )
    writer.close()
    event.remove(store.engine, "before_cursor_execute", note)

    assert lost == {stolen.row_id}  # the body of a row taken over must not go
    # One statement for the group (around it, the writer's session setting and its undoing).
    writes = [s for s in statements if not s.startswith(("SET ", "RESET "))]
    assert len(writes) == 1, statements
    d = schema.deliveries
    with store.engine.connect() as conn:
        written = sorted(conn.exec_driver_sql("SELECT id FROM row_writes").scalars())
        got = {r.id: r for r in conn.execute(select(d).where(d.c.edition_id == edition_id))}
    assert written == sorted(r.row_id for r in rows[:4])  # each row once, the stolen one never
    assert [got[r.row_id].state for r in rows] == [
        "in_data",
        "in_data",
        "sent",
        "deferred",
        "sending",
    ]
    assert got[rows[0].row_id].message_id == "<0@x>" and got[rows[0].row_id].relay == "relay"
    assert got[rows[2].row_id].sent_at == NOW and got[rows[2].row_id].last_code == 250
    assert got[rows[3].row_id].sent_at is None and got[rows[3].row_id].last_reply == "4.7.1 later"
    assert got[stolen.row_id].message_id is None


def test_a_row_twice_in_one_fenced_group_is_written_in_order(store):
    edition_id, _ = queued_edition(store, 1)
    store.register_worker("a", edition_id, ["relay"], 60, NOW)
    row = store.claim(edition_id, "daily", 1, NOW, "a")[0]
    writer = LedgerWriter(store.engine, "a")

    def write(*outcomes: tuple[DeliveryState, str]) -> set[int]:
        return writer.write(
            [Outcome(row.row_id, st, 250, reply, attempt=row.attempt) for st, reply in outcomes],
            NOW,
        )

    def state() -> tuple[str, str]:
        with store.engine.connect() as conn:
            d = schema.deliveries
            found = conn.execute(select(d.c.state, d.c.last_reply)).one()
        return found.state, found.last_reply

    assert write((DeliveryState.in_data, "mark"), (DeliveryState.sent, "ok")) == set()
    assert state() == ("sent", "ok")
    # The same writer goes on with the next group.
    assert write((DeliveryState.sent, "ok again")) == set()
    writer.close()
    assert state() == ("sent", "ok again")


def test_deferred_rows_of_a_live_worker_are_left_to_its_retries(store):
    edition_id, _ = queued_edition(store, 2)
    store.register_worker("a", edition_id, ["relay"], 60, NOW)
    row = store.claim(edition_id, "daily", 1, NOW, "a")[0]
    store.write([Outcome(row.row_id, DeliveryState.deferred, 451, "4.7.1 later")], NOW)
    other = store.claim(edition_id, "daily", 10, NOW, "b")
    assert row.row_id not in {c.row_id for c in other}  # a's retry schedule owns it
    store.write([Outcome(c.row_id, DeliveryState.sent) for c in other], NOW)
    assert not store.claimable(edition_id, "b")

    store.unregister_worker("a")  # a ended: its deferred row is anyone's now
    assert store.claimable(edition_id, "b")
    assert [c.row_id for c in store.claim(edition_id, "daily", 10, NOW, "b")] == [row.row_id]


def test_heartbeats_keep_a_long_run_s_claims_past_its_lease(store):
    # A lease of one second, a run of several: only the heartbeat keeps the rows its own
    # while another worker keeps trying to take over expired claims.
    edition_id, emails = queued_edition(store, 30)
    stop = threading.Event()
    taken: list[dict] = []
    other = open_store(
        str(store.engine.url.render_as_string(hide_password=False)), migrate_schema=False
    )

    def rival() -> None:
        while not stop.is_set():
            taken.append(other.recover(edition_id, NOW, exclusive=False))
            time.sleep(0.1)

    with smtp_server() as server:
        server.handler.data_delay = 0.1
        thread = threading.Thread(target=rival)
        thread.start()
        try:
            report = asyncio.run(
                asyncio.wait_for(
                    send_edition(
                        store,
                        edition_id,
                        "daily",
                        builder(edition_id, emails),
                        [SmtpTransport(server.relay(), connections=1)],
                        now=lambda: NOW,
                        exclusive=False,
                        lease=1.0,
                        batch=5,
                    ),
                    timeout=60,
                )
            )
        finally:
            stop.set()
            thread.join()
            other.close()
    assert report.elapsed > 2.5  # well past the lease
    assert report.counts == {"sent": 30} and report.lost_leases == 0
    assert not any(t["requeued"] or t["unknown"] for t in taken)
    assert sorted(server.handler.recipients()) == sorted(emails.values())


def test_rate_shares_add_up_to_the_relay_limit():
    clock = [0.0]
    limiter = RateLimiter(
        per_second=100, per_hour=36_000, sent_last_hour=6_000, clock=lambda: clock[0]
    )
    assert limiter.limit == 10  # the hourly limit is the tighter: 36,000 / 3,600
    limiter.set_share(1 / 4)
    assert limiter.limit == pytest.approx(2.5)
    hourly = limiter._buckets[1]
    assert hourly._tokens == pytest.approx(30_000 / 4)  # a quarter of what is left
    limiter.set_share(1 / 2)
    assert limiter.limit == pytest.approx(5) and hourly._tokens == pytest.approx(15_000)


# -- real processes on PostgreSQL ---------------------------------------------------------------

PG_READERS = 120


@pytest.fixture
def pg_env(monkeypatch, tmp_path, postgres):
    """Settings for `digest send` processes on a fresh PostgreSQL database, with two lists."""
    name = postgres.create()
    config = tmp_path / "digest.toml"
    text = (ROOT / "digest.toml").read_text().replace('"samples/', f'"{ROOT}/samples/')
    weekly = text[text.index("[[lists]]") : text.index("[[sections]]")]
    config.write_text(text + "\n" + weekly.replace('name = "daily"', 'name = "weekly"'))
    env = sample_settings(
        postgres.url_of(name),
        DIGEST_CONFIG=str(config),
        DIGEST_SMTP_CONNECTIONS="2",
        DIGEST_SEND_RETRY_BUDGET="0",
        DIGEST_SEND_BATCH="10",
        DIGEST_SEND_LEASE="3",
    )
    set_settings(monkeypatch, env)
    csv = readers_csv(tmp_path, PG_READERS, lambda i: "daily" if i % 3 else "daily;weekly")
    with csv.open("a") as more:
        more.write("".join(f"weekly{i:03d}@example.org,Weekly {i},weekly\n" for i in range(40)))
    load_sample(csv)
    yield env
    postgres.drop(name)


def _digest(server, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "send", "--json", *args],
        env=child_env(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(child: subprocess.Popen, timeout: float = 120) -> dict:
    out, err = child.communicate(timeout=timeout)
    assert out, err
    return json.loads(out)


def _list_of(message) -> str:
    parsed = message_from_bytes(message.raw, policy=policy.default)
    return "weekly" if "weekly" in parsed["List-Id"] else "daily"


def _daily() -> set[str]:
    return {f"reader{i:03d}@example.org" for i in range(PG_READERS)}


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_send_each_reader_exactly_once(pg_env, workers):
    with smtp_server() as server:
        server.handler.data_delay = 0.02  # slow enough that every worker gets a share
        summary = _finish(_digest(server, "--list", "daily", "--workers", str(workers)))
        status = json.loads(run("status", "--list", "daily", "--json").stdout)

    assert summary["status"] == "complete", summary
    got = Counter(server.handler.recipients())
    assert set(got) == _daily() and max(got.values()) == 1
    ids = Counter(
        message_from_bytes(m.raw, policy=policy.default)["Message-ID"]
        for m in server.handler.messages
    )
    assert len(ids) == PG_READERS and max(ids.values()) == 1
    assert len(summary["workers"]) == workers
    assert sum(w["sent"] for w in summary["workers"]) == summary["sent"] == PG_READERS
    assert sum(1 for w in summary["workers"] if w["sent"]) >= 2  # the work was shared
    assert all(w["peak_rss_mb"] > 0 for w in summary["workers"])
    delivered = sum(len(m.raw) for m in server.handler.messages)
    assert sum(w["bytes"] for w in summary["workers"]) == summary["bytes"] == delivered
    assert status["status"] == "complete" and status["counts"] == {"sent": PG_READERS}
    assert status["workers"] == []  # every worker unregistered on the way out


def test_a_killed_worker_s_rows_are_finished_by_another_after_its_lease(pg_env):
    with smtp_server() as server:
        server.handler.data_delay = 0.05
        doomed = _digest(server, "--list", "daily")
        survivor = _digest(server, "--list", "daily")
        try:
            server.handler.wait_for_messages(20, timeout=60)
        finally:
            doomed.send_signal(signal.SIGKILL)
            doomed.wait()
        killed_at = time.monotonic()
        summary = _finish(survivor)
        waited = time.monotonic() - killed_at
        status = json.loads(run("status", "--list", "daily", "--json").stdout)

    counts = status["counts"]
    unknown = counts.get("unknown", 0)
    got = Counter(server.handler.recipients())
    assert max(got.values()) == 1, "a reader got two copies"
    assert counts.get("sent", 0) + unknown == PG_READERS, counts  # nothing left behind
    assert set(got) <= _daily() and len(got) + unknown >= PG_READERS
    # The survivor took the dead worker's claims over once its lease (3 s) ran out.
    assert summary["taken_over"] >= 1, summary
    assert waited >= 2.0
    assert summary["status"] in ("complete", "incomplete")
    assert status["status"] == "complete"


def test_two_lists_send_their_editions_at_once(pg_env):
    with smtp_server() as server:
        server.handler.data_delay = 0.01
        children = [
            _digest(server, "--list", name, "--workers", "2") for name in ("daily", "weekly")
        ]
        daily, weekly = (_finish(child) for child in children)

    assert daily["status"] == weekly["status"] == "complete"
    by_list: dict[str, Counter] = {"daily": Counter(), "weekly": Counter()}
    for message in server.handler.messages:
        by_list[_list_of(message)].update(message.rcpt_tos)
    weekly_readers = {f"reader{i:03d}@example.org" for i in range(0, PG_READERS, 3)} | {
        f"weekly{i:03d}@example.org" for i in range(40)
    }
    assert set(by_list["daily"]) == _daily() and max(by_list["daily"].values()) == 1
    assert set(by_list["weekly"]) == weekly_readers and max(by_list["weekly"].values()) == 1
    assert daily["sent"] == PG_READERS and weekly["sent"] == len(weekly_readers)


# -- SQLite ---------------------------------------------------------------------------------


@pytest.mark.sqlite_only
def test_on_sqlite_one_worker_runs_and_says_why(monkeypatch, tmp_path, db_url):
    set_settings(monkeypatch, sample_settings(db_url))
    load_sample(readers_csv(tmp_path, 5))
    with smtp_server() as server:
        monkeypatch.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        result = run("send", "--workers", "3")
    assert "3 workers asked, one runs" in result.stderr and "PostgreSQL" in result.stderr
    assert len(server.handler.messages) == 5


def test_workers_share_a_relay_s_rate_limit(pg_env, monkeypatch):
    # Two workers, one relay limited to 40 messages a second: together they keep to it.
    monkeypatch.setenv("DIGEST_SMTP_PER_SECOND", "40")
    with smtp_server() as server:
        summary = _finish(_digest(server, "--list", "daily", "--workers", "2"))
        stamps = server.handler.received_at

    assert summary["status"] == "complete" and summary["limit"] == 40
    assert all(w["sent"] for w in summary["workers"])  # both sent, each at its share
    # From the 21st message on, both workers are running and know of each other.
    steady = stamps[20:]
    rate = (len(steady) - 1) / (steady[-1] - steady[0])
    assert 0.8 * 40 <= rate <= 1.1 * 40, rate


def test_a_worker_taken_over_while_alive_never_sends_a_row_it_lost(store):
    # Worker A is slow, not dead: while the relay holds its two connections in DATA, its
    # lease is declared expired and its rows recovered. Once released, A must not send the
    # rows still in its hands (each `in_data` mark fails), nor claim more; B finishes.
    edition_id, emails = queued_edition(store, 30)
    other = open_store(store.engine.url.render_as_string(hide_password=False), migrate_schema=False)
    taken: list[dict] = []

    def send(server, **options):
        return asyncio.run(
            asyncio.wait_for(
                send_edition(
                    store,
                    edition_id,
                    "daily",
                    builder(edition_id, emails),
                    [SmtpTransport(server.relay(), connections=2)],
                    now=lambda: NOW,
                    exclusive=False,
                    batch=10,
                    **options,
                ),
                timeout=60,
            )
        )

    def take_over(server) -> None:
        server.handler.wait_for_messages(5, timeout=30)
        with other.engine.begin() as conn:
            conn.execute(update(schema.send_workers).values(expires_at=0))
        taken.append(other.recover(edition_id, NOW, exclusive=False))
        server.handler.release()

    with smtp_server() as server:
        server.handler.hold_after(5)
        rival = threading.Thread(target=take_over, args=(server,))
        rival.start()
        try:
            slow = send(server, lease=60)
        finally:
            rival.join()
        done = send(server)
    other.close()

    got = Counter(server.handler.recipients())
    assert max(got.values()) == 1, "a row was sent by both workers"
    assert taken[0]["requeued"] >= 4  # the rest of A's batch went back to the queue
    assert slow.lost_leases >= 4 and "lease" in (slow.stopped or "")
    # A's messages held in DATA did reach the relay: recovered as unknown, then A's reply
    # (its claim still matched) recorded them as sent.
    assert done.counts == {"sent": 30}, done.counts
    assert set(got) == set(emails.values())


def test_a_workers_writer_plans_its_statement_once_and_leaves_the_pool_as_it_was(store):
    if store.engine.dialect.name != "postgresql":
        pytest.skip("the one-statement writer is PostgreSQL's")
    edition_id, _ = queued_edition(store, 2)
    store.register_worker("a", edition_id, ["relay"], 60, NOW)
    rows = store.claim(edition_id, "daily", 2, NOW, "a")
    writer = LedgerWriter(store.engine, "a")
    for row in rows:
        writer.write([Outcome(row.row_id, DeliveryState.sent, 250, attempt=row.attempt)], NOW)
    mode = writer._connection(autocommit=True).exec_driver_sql("SHOW plan_cache_mode").scalar()
    assert mode == "force_generic_plan"
    with store.engine.connect() as other:  # a pooled connection, while the writer holds its own
        assert other.exec_driver_sql("SHOW plan_cache_mode").scalar() == "auto"
    writer.close()
    for _ in range(3):  # whichever connection the pool hands out
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "auto"
    assert store.counts(edition_id) == {"sent": 2}
