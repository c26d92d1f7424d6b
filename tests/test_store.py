"""The store on a real SQLite file: migrations, pragmas, editions and the ledger."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from digest.errors import StoreError
from digest.models import Article, DeliveryState, Edition, NewSubscriber, Section
from digest.store import open_store
from digest.store.migrations import MIGRATIONS, current_version
from tests.support.values import NOW


@pytest.mark.sqlite_only  # WAL, foreign keys: SQLite pragmas (see test_postgres.py)
def test_migrations_apply_once_and_survive_reopening(db_url):
    first = open_store(db_url)
    assert current_version(first.engine) == MIGRATIONS[-1][0]
    first.close()
    second = open_store(db_url)
    with second.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM schema_migrations").scalar() == len(
            MIGRATIONS
        )
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    second.close()


def test_a_database_of_the_previous_release_gains_send_workers_and_the_claim_index(db_url):
    from sqlalchemy import inspect

    store = open_store(db_url)
    with store.engine.begin() as conn:  # back to version 4's shape, with a ledger row in it
        conn.exec_driver_sql("DROP TABLE send_workers")
        conn.exec_driver_sql("DROP INDEX ix_deliveries_edition_state_id")
        conn.exec_driver_sql(
            "CREATE INDEX ix_deliveries_edition_state ON deliveries (edition_id, state)"
        )
        conn.exec_driver_sql("DELETE FROM schema_migrations WHERE version = 5")
    store.ensure_lists([("daily", "Daily")])
    store.add_subscribers([NewSubscriber(email="a@example.org", lists=("daily",))], NOW)
    edition = store.create_edition(
        Edition(list_name="daily", key="2026-11-26", created_at=NOW, sections=())
    )
    store.enqueue_list(edition.id, "daily", NOW)
    store.close()

    upgraded = open_store(db_url)
    assert current_version(upgraded.engine) == max(v for v, _name, _step in MIGRATIONS)
    indexes = {i["name"] for i in inspect(upgraded.engine).get_indexes("deliveries")}
    assert "ix_deliveries_edition_state_id" in indexes
    assert "ix_deliveries_edition_state" not in indexes
    upgraded.register_worker("r", edition.id, ["relay"], 60, NOW)
    assert [w["run_id"] for w in upgraded.live_workers(edition.id)] == ["r"]
    assert [c.attempt for c in upgraded.claim(edition.id, "daily", 5, NOW, "r")] == [1]
    upgraded.close()


def test_unopenable_database_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open the database"):
        open_store(f"sqlite:///{blocker}/sub/digest.db")


def _articles(store, n=3, section="launch-pad"):
    store.sync_sections([(section, "Launch Pad", ["/feeds/x.xml"])])
    items = [
        Article(key=f"guid:{i}", section=section, title=f"T{i}", url=f"https://x/{i}")
        for i in range(n)
    ]
    assert store.save_articles(items, NOW) == (n, 0)
    return store.articles(section=section)


def test_saving_again_adds_nothing_and_updates_keep_first_seen(store):
    stored = _articles(store)
    later = NOW + timedelta(hours=5)
    changed = Article(key="guid:1", section="launch-pad", title="T1 corrected", url="https://x/1")
    assert store.save_articles(
        [
            changed,
            *[
                Article(key=a.key, section=a.section, title=a.title, url=a.url)
                for a in stored
                if a.key != "guid:1"
            ],
        ],
        later,
    ) == (0, 1)
    again = {a.key: a for a in store.articles()}
    assert again["guid:1"].title == "T1 corrected"
    assert again["guid:1"].first_seen_at == NOW


def _edition(store):
    store.ensure_lists([("daily", "Daily")])
    arts = _articles(store)
    edition = Edition(
        list_name="daily",
        key="2026-11-26",
        created_at=NOW,
        sections=(Section("launch-pad", "Launch Pad", tuple(arts[:2])),),
    )
    return store.create_edition(edition)


def test_edition_is_frozen_and_created_once(store):
    created = _edition(store)
    assert created.id is not None
    assert len(created.sections[0].articles) == 2
    other = Edition(
        list_name="daily", key="2026-11-26", created_at=NOW + timedelta(hours=1), sections=()
    )
    assert store.create_edition(other) == created
    assert store.sent_article_keys("daily") == {a.key for a in created.sections[0].articles}
    assert store.previous_edition_time("daily", "2026-11-27") == NOW
    assert store.previous_edition_time("daily", "2026-11-26") is None


def test_ledger_rows_are_unique_and_recover_after_a_crash(store):
    edition = _edition(store)
    store.add_subscribers(
        [NewSubscriber(email=f"r{i}@example.com", lists=("daily",)) for i in range(4)], NOW
    )
    ids = [s.id for s in store.recipients("daily")]
    assert store.enqueue(edition.id, ids, NOW) == 4
    assert store.enqueue(edition.id, ids, NOW) == 0
    claimed = store.claim(edition.id, "daily", 3, NOW, "run-1")
    assert len(claimed) == 3
    store.mark_delivery(claimed[0].row_id, DeliveryState.in_data, NOW)
    store.mark_delivery(claimed[1].row_id, DeliveryState.sent, NOW)
    assert store.counts(edition.id) == {"in_data": 1, "sent": 1, "sending": 1, "queued": 1}
    assert store.recover(edition.id, NOW) == {"requeued": 1, "unknown": 1}
    assert store.counts(edition.id) == {"unknown": 1, "sent": 1, "queued": 2}
    assert len(store.claim(edition.id, "daily", 10, NOW, "run-2")) == 2
    assert len(store.claim(edition.id, "daily", 10, NOW, "run-2")) == 0


def test_an_older_database_gets_normal_form_addresses_and_pending_sign_ups_their_list(db_url):
    from sqlalchemy import text

    store = open_store(db_url)
    store.ensure_lists([("daily", "Daily")])
    with store.engine.begin() as conn:  # rows as version 5 wrote them
        conn.execute(text("DELETE FROM schema_migrations WHERE version = 6"))
        for sid, email, key, status in (
            (1, "José@exämple.com", "josé@exämple.com", "active"),
            (2, "Straße@example.com", "strasse@example.com", "active"),
            (3, "wait@example.com", "wait@example.com", "pending"),
        ):
            conn.execute(
                text(
                    "INSERT INTO subscribers (id, email, email_key, name, status, "
                    "created_at, updated_at, soft_bounces) VALUES (:i, :e, :k, '', :s, "
                    ":n, :n, 0)"
                ),
                {"i": sid, "e": email, "k": key, "s": status, "n": NOW},
            )
        conn.execute(
            text(
                "INSERT INTO confirmations (subscriber_id, list_id, requested_at) VALUES (3, 1, :n)"
            ),
            {"n": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO suppressions (address_hash, email, reason, created_at) "
                "VALUES ('old', 'Bounced@exämple.com', 'hard-bounce', :n)"
            ),
            {"n": NOW},
        )
    store.close()

    upgraded = open_store(db_url)
    assert upgraded.record("josé@xn--exmple-cua.com").id == 1
    assert upgraded.record("STRAẞE@example.com").id == 2
    assert upgraded.record("strasse@example.com") is None
    assert upgraded.record("wait@example.com").memberships[0].state == "pending"
    assert upgraded.suppression("bounced@xn--exmple-cua.com") == "hard-bounce"
    upgraded.close()


def test_a_runs_writer_stores_outcomes_exactly_as_the_stores_own_write(store):
    from sqlalchemy import select

    from digest.store import schema
    from digest.store.ledger import LedgerWriter
    from digest.store.protocols import Outcome
    from tests.support.sending import queued_edition

    edition_id, _ = queued_edition(store, 2)
    first, second = store.claim(edition_id, "daily", 2, NOW, "run")
    # Not UTC, with microseconds: both ways must store the same UTC instant the same way.
    when = (NOW + timedelta(microseconds=123456)).astimezone(timezone(timedelta(hours=-5)))

    def outcome(row):
        return Outcome(row.row_id, DeliveryState.sent, 250, "2.0.0 ok", "<m@x>", "relay:25")

    writer = LedgerWriter(store.engine)
    writer.write([outcome(first)], when)
    writer.close()
    store.write([outcome(second)], when)

    d = schema.deliveries
    columns = [d.c.state, d.c.last_code, d.c.last_reply, d.c.message_id, d.c.relay]
    times = ["updated_at", "sent_at"]
    with store.engine.connect() as conn:
        rows = conn.execute(select(*columns).where(d.c.edition_id == edition_id)).all()
        raw = conn.exec_driver_sql(f"SELECT {', '.join(times)} FROM deliveries ORDER BY id").all()
        stored = conn.execute(select(d.c.sent_at).order_by(d.c.id)).scalars().all()
    assert rows[0] == rows[1] == ("sent", 250, "2.0.0 ok", "<m@x>", "relay:25")
    assert raw[0] == raw[1]  # the same text on SQLite, the same timestamp on PostgreSQL
    assert stored == [when, when]
    assert store.sent_since("relay:25", NOW) == 2
