"""PostgreSQL itself: migrations, concurrent writers, time zones and the advisory run lock.

The rest of the suite runs on PostgreSQL through the ``db_url`` fixture; these tests check
what only a server shared by several processes brings: many connections at once, READ
COMMITTED transactions, a session time zone, a lock that goes with its holder.
They run when DIGEST_TEST_POSTGRES_URL names a server (the ``postgres`` fixture skips
them otherwise).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect

from digest.models import Article, Edition, NewSubscriber, Section
from digest.store import open_store
from digest.store.migrations import MIGRATIONS, current_version
from tests.support.values import NOW, ROOT


@pytest.fixture
def empty_url(postgres):
    """A new database with no tables at all."""
    name = postgres.create(template="template1")
    yield postgres.url_of(name)
    postgres.drop(name)


@pytest.fixture
def pg_url(postgres):
    """A new database with the newest schema."""
    name = postgres.create()
    yield postgres.url_of(name)
    postgres.drop(name)


def together(n: int, work: Callable[[int], object]) -> list:
    """Run ``work(i)`` in ``n`` threads released at the same moment; their results in order
    (an exception raised in a thread is re-raised here)."""
    barrier, results = threading.Barrier(n), [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results


def test_migrations_build_the_schema_once_with_native_types(empty_url):
    store = open_store(empty_url)
    try:
        assert store.dialect == "postgresql"
        assert current_version(store.engine) == MIGRATIONS[-1][0]
        columns = {c["name"]: c for c in inspect(store.engine).get_columns("deliveries")}
        assert columns["created_at"]["type"].timezone is True  # timestamptz, not text
        assert str(columns["id"]["type"]) == "INTEGER" and columns["id"]["autoincrement"]
        indexes = {i["name"] for i in inspect(store.engine).get_indexes("deliveries")}
        assert {
            "ix_deliveries_edition_state_id",
            "ix_deliveries_relay_sent",
            "ix_deliveries_subscriber",
        } <= indexes
    finally:
        store.close()
    again = open_store(empty_url)
    with again.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT version FROM schema_migrations ORDER BY 1").all()
    again.close()
    assert [r[0] for r in rows] == [v for v, _, _ in MIGRATIONS]


def test_machines_starting_at_once_migrate_a_new_database_once(empty_url):
    def start(_: int) -> int:
        store = open_store(empty_url)
        try:
            return current_version(store.engine)
        finally:
            store.close()

    assert together(4, start) == [MIGRATIONS[-1][0]] * 4
    store = open_store(empty_url)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM schema_migrations").scalar() == len(
            MIGRATIONS
        )
    store.close()


def test_times_are_the_same_instants_whatever_the_session_time_zone(pg_url):
    tokyo = open_store(pg_url + "?options=-c%20timezone%3DAsia/Tokyo")
    try:
        tokyo.ensure_lists([("daily", "Daily")])
        local = datetime(2026, 11, 26, 8, 30, tzinfo=timezone(timedelta(hours=-5)))
        tokyo.add_subscribers([NewSubscriber(email="a@example.com", lists=("daily",))], local)
        with tokyo.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW timezone").scalar() == "Asia/Tokyo"
        created = tokyo.record("a@example.com").created_at
        assert created == local and created.utcoffset() == timedelta(0)
    finally:
        tokyo.close()
    utc = open_store(pg_url)
    try:
        assert utc.record("A@Example.COM").created_at == local  # and case-folded lookups
    finally:
        utc.close()


def test_concurrent_sign_ups_and_imports_get_distinct_ids(pg_url):
    store = open_store(pg_url)
    try:
        store.ensure_lists([("daily", "Daily")])

        def add(i: int) -> dict:
            people = [
                NewSubscriber(email=f"t{i}-{n}@example.com", lists=("daily",)) for n in range(20)
            ]
            counts = store.add_subscribers(people, NOW)
            store.request_confirmation(f"web{i}@example.com", "", "daily", None, NOW, None)
            return counts

        assert [c["added"] for c in together(6, add)] == [20] * 6
        ids = [r.id for r in store.records()]
        assert len(ids) == len(set(ids)) == 6 * 21
    finally:
        store.close()


def _edition_with_rows(store, n: int) -> int:
    store.ensure_lists([("daily", "Daily")])
    store.sync_sections([("launch-pad", "Launch Pad", ["/feeds/x.xml"])])
    store.save_articles(
        [Article(key="guid:1", section="launch-pad", title="T", url="https://x/1")], NOW
    )
    article = store.articles()[0]
    edition = store.create_edition(
        Edition(
            list_name="daily",
            key="2026-11-26",
            created_at=NOW,
            sections=(Section("launch-pad", "Launch Pad", (article,)),),
        )
    )
    store.add_subscribers(
        [NewSubscriber(email=f"r{i}@example.com", lists=("daily",)) for i in range(n)], NOW
    )
    assert store.enqueue(edition.id, [s.id for s in store.recipients("daily")], NOW) == n
    return edition.id


def test_claims_racing_for_the_same_rows_never_hand_a_row_out_twice(pg_url):
    store = open_store(pg_url)
    try:
        edition_id = _edition_with_rows(store, 300)

        def drain(i: int) -> list[int]:
            taken: list[int] = []
            while batch := store.claim(edition_id, "daily", 25, NOW, f"run-{i}"):
                taken += [c.row_id for c in batch]
            return taken

        claimed = [row for rows in together(4, drain) for row in rows]
        assert len(claimed) == len(set(claimed)) == 300
        assert store.counts(edition_id) == {"sending": 300}
    finally:
        store.close()


def test_erased_address_is_nowhere_in_the_database(pg_url):
    store = open_store(pg_url)
    try:
        store.ensure_lists([("daily", "Daily")])
        store.add_subscribers([NewSubscriber(email="gone@example.com", lists=("daily",))], NOW)
        store.remove_subscriber("Gone@Example.com", NOW, erase=True)
        with store.engine.connect() as conn:
            tables = (
                conn.exec_driver_sql(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                )
                .scalars()
                .all()
            )
            dump = "\n".join(
                str(row) for t in tables for row in conn.exec_driver_sql(f'SELECT * FROM "{t}"')
            )
        assert "erased" in dump and "gone@example.com" not in dump.lower()
    finally:
        store.close()


def test_a_list_lock_is_held_once_across_connections(pg_url):
    first, second = open_store(pg_url), open_store(pg_url)
    try:
        with first.list_lock("daily") as held:
            assert held
            with second.list_lock("daily") as again, second.list_lock("weekly") as other:
                assert not again and other
        with second.list_lock("daily") as held_now:
            assert held_now
    finally:
        first.close()
        second.close()


def test_a_killed_holder_leaves_no_lock_behind(pg_url):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from digest.store import open_store\n"
            "with open_store(sys.argv[1]).list_lock('daily') as held:\n"
            "    print('held' if held else 'refused', flush=True)\n"
            "    sys.stdin.read()\n",
            pg_url,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    store = open_store(pg_url)
    try:
        assert holder.stdout.readline().strip() == "held"
        with store.list_lock("daily") as held:
            assert not held
        holder.kill()
        holder.wait(timeout=10)
        deadline = time.monotonic() + 10
        while True:  # the server notices the closed connection; poll, do not sleep blindly
            with store.list_lock("daily") as held:
                if held:
                    break
            assert time.monotonic() < deadline, "the lock outlived its killed holder"
            time.sleep(0.05)
    finally:
        holder.kill()
        store.close()


def test_sqlite_has_no_server_lock_to_take(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with store.list_lock("daily") as held, store.list_lock("daily") as again:
            assert held and again  # one machine: the run lock file is the lock there
    finally:
        store.close()
