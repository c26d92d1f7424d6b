"""Scale benchmark on PostgreSQL: a list of 1,000,000 subscribers and its edition's ledger.

Creates a fresh database on the server of ``--url`` (the role needs CREATEDB), migrates it,
imports ``--subscribers`` subscribers through the store (in batches, as `digest subscribers
import` does), freezes an edition, then times the creation of the edition's ledger (one row
per recipient) and a second, idempotent pass that must add nothing. Prints one JSON object;
the database is dropped at the end unless ``--keep``.

    .venv/bin/python benchmarks/scale.py --url postgresql://user:pw@127.0.0.1/postgres \\
        [--subscribers 1000000]

``--url`` defaults to DIGEST_TEST_POSTGRES_URL (what .ci/run sets).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from datetime import datetime, timezone

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from digest.models import Article, Edition, Section
from digest.store import open_store
from digest.store.subscribers import NewSubscriber

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=timezone.utc)
SECTIONS = ["internet-space", "military-space", "drone-space", "missile-defense", "launch-pad"]
BATCH = 50_000


def _admin(url: str):
    return create_engine(make_url(url).set(drivername="postgresql+psycopg"),
                         isolation_level="AUTOCOMMIT")


def _people(start: int, stop: int) -> list[NewSubscriber]:
    return [NewSubscriber(email=f"reader{i}@example{i % 97}.com", name=f"Reader {i}",
                          lists=("daily",),
                          sections=frozenset(SECTIONS[j] for j in range(5) if (i >> j) & 1)
                          or None)
            for i in range(start, stop)]


def _edition(store) -> int:
    store.sync_sections([(s, s.title(), []) for s in SECTIONS])
    store.save_articles([Article(key=f"guid:{s}", section=s, title=f"Lead of {s}",
                                 url=f"https://news.example.com/{s}") for s in SECTIONS], NOW)
    by_section = {a.section: a for a in store.articles()}
    edition = store.create_edition(Edition(
        list_name="daily", key="2026-11-26", created_at=NOW,
        sections=tuple(Section(s, s.title(), (by_section[s],)) for s in SECTIONS)))
    return edition.id


def _enqueue(store, edition_id: int) -> int:
    if hasattr(store, "enqueue_list"):  # streamed from the subscriptions
        return store.enqueue_list(edition_id, "daily", NOW)
    return store.enqueue(edition_id, [s.id for s in store.recipients("daily")], NOW)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("DIGEST_TEST_POSTGRES_URL"))
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if not args.url:
        parser.error("give --url postgresql://... (or set DIGEST_TEST_POSTGRES_URL)")
    name = f"digest_bench_scale_{os.getpid()}"
    admin = _admin(args.url)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(args.url).set(database=name).render_as_string(hide_password=False)
    store = open_store(url)
    try:
        store.ensure_lists([("daily", "Daily")])
        started = time.perf_counter()
        for first in range(0, args.subscribers, BATCH):
            store.add_subscribers(_people(first, min(first + BATCH, args.subscribers)), NOW)
        imported = time.perf_counter() - started
        edition_id = _edition(store)
        started = time.perf_counter()
        rows = _enqueue(store, edition_id)
        ledger = time.perf_counter() - started
        started = time.perf_counter()
        again = _enqueue(store, edition_id)
        second = time.perf_counter() - started
        with store.engine.connect() as conn:
            size = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
    finally:
        store.close()
        if not args.keep:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    print(json.dumps({
        "engine": "postgresql", "subscribers": args.subscribers,
        "import_seconds": round(imported, 1),
        "ledger_rows": rows, "ledger_seconds": round(ledger, 1),
        "ledger_rows_per_second": round(rows / ledger) if ledger else None,
        "second_pass_rows": again, "second_pass_seconds": round(second, 1),
        "database_mb": round(size / 2**20),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == "__main__":
    main()
