"""Scale benchmark on PostgreSQL: 1,000,000 subscribers, the edition's ledger, and sending
it with 1, 2 and 4 workers.

Creates a fresh database on the server of ``--url`` (the role needs CREATEDB), migrates it,
imports ``--subscribers`` subscribers through the store (in batches, as `digest subscribers
import` does), freezes today's edition of the list "daily" of digest.toml, then:

- times the creation of the edition's ledger (one row per recipient, INSERT ... SELECT on the
  server) and a second, idempotent pass that must add nothing;
- for each ``--workers`` count, puts the whole ledger back in the queue and runs `digest send
  --workers N --json` in a child process against Postfix's ``smtp-sink`` (an aiosmtpd sink
  when Postfix is missing; see benchmarks/send_throughput.py): messages sent, wall time, the
  rate inside the run, the peak RSS of each worker process, and the scaling factor (rate with
  N workers / rate with one). ``--send-limit`` caps the rows put back in the queue for each
  count (default: all of them); ``--full-last`` sends the whole ledger with the last count.

Prints one JSON object; the database is dropped at the end unless ``--keep``.

    .venv/bin/python benchmarks/scale.py --url postgresql://user:pw@127.0.0.1/postgres \\
        [--subscribers 1000000] [--workers 1,2,4] [--send-limit N] [--full-last] \\
        [--connections 4] [--no-send]

``--url`` defaults to DIGEST_TEST_POSTGRES_URL (what .ci/run sets).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from send_throughput import digest_send, sink
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from digest.config import load_newsletter
from digest.models import Article, Edition, NewSubscriber, Section
from digest.selection import edition_key
from digest.store import open_store

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.now(UTC)
SECTIONS = ["internet-space", "military-space", "drone-space", "missile-defense", "launch-pad"]
BATCH = 50_000
SECRET = "b" * 48


def _admin(url: str):
    return create_engine(
        make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )


def _people(start: int, stop: int) -> list[NewSubscriber]:
    return [
        NewSubscriber(
            email=f"reader{i}@example{i % 97}.com",
            name=f"Reader {i}",
            lists=("daily",),
            sections=frozenset(SECTIONS[j] for j in range(5) if (i >> j) & 1) or None,
        )
        for i in range(start, stop)
    ]


def _edition(store) -> int:
    """Today's edition of "daily" (the key `digest send` looks for), five stories a section."""
    daily = load_newsletter(ROOT / "digest.toml").get_list("daily")
    store.sync_sections([(s, s.title(), []) for s in SECTIONS])
    store.save_articles(
        [
            Article(
                key=f"guid:{s}:{n}",
                section=s,
                title=f"Story {n} of {s.replace('-', ' ')}",
                url=f"https://news.example.com/{s}/{n}",
                summary="A summary of the story, as a feed gives it. " * 4,
                published_at=NOW,
            )
            for s in SECTIONS
            for n in range(5)
        ],
        NOW,
    )
    by_section: dict[str, list] = {}
    for article in store.articles():
        by_section.setdefault(article.section, []).append(article)
    edition = store.create_edition(
        Edition(
            list_name="daily",
            key=edition_key(NOW, daily.tz),
            created_at=NOW,
            sections=tuple(Section(s, s.title(), tuple(by_section[s])) for s in SECTIONS),
        )
    )
    return edition.id


def _requeue(store, edition_id: int, limit: int | None) -> int:
    """Put the ledger back as new (all rows, or the first ``limit`` queued, the rest sent)."""
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE deliveries SET state = 'queued', run_id = NULL, attempts = 0, "
                "relay = NULL, sent_at = NULL, message_id = NULL, last_code = NULL, "
                "last_reply = NULL WHERE edition_id = :e"
            ),
            {"e": edition_id},
        )
        if limit is not None:
            conn.execute(
                text(
                    "UPDATE deliveries SET state = 'sent' WHERE edition_id = :e AND "
                    "id > (SELECT id FROM deliveries WHERE edition_id = :e "
                    "ORDER BY id OFFSET :n LIMIT 1)"
                ),
                {"e": edition_id, "n": limit},
            )
        conn.execute(
            text("UPDATE editions SET status = 'sending', completed_at = NULL WHERE id = :e"),
            {"e": edition_id},
        )
        conn.execute(text("DELETE FROM send_workers"))
        queued = conn.execute(
            text("SELECT count(*) FROM deliveries WHERE edition_id = :e AND state = 'queued'"),
            {"e": edition_id},
        ).scalar()
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE deliveries")
    return queued


def _cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _send(url: str, port: int, workers: int, folder: Path, connections: int) -> dict:
    env = {
        "DIGEST_DATABASE_URL": url,
        "DIGEST_CONFIG": str(ROOT / "digest.toml"),
        "DIGEST_SECRET_KEY": SECRET,
        "DIGEST_BASE_URL": "https://news.example.com",
        "DIGEST_SMTP_CONNECTIONS": str(connections),
    }
    folder.mkdir(parents=True, exist_ok=True)
    busy, total = _cpu()
    run = digest_send(env, port, folder, "--workers", str(workers), full=True)
    busy, total = (a - b for a, b in zip(_cpu(), (busy, total), strict=True))
    summary = run.pop("summary")
    per_worker = [w["peak_rss_mb"] for w in summary["workers"]] or [run["peak_rss_mb"]]
    return {
        **run,
        "workers": workers,
        "worker_peak_rss_mb": per_worker,
        "max_worker_peak_rss_mb": max(per_worker),
        "watcher_peak_rss_mb": run["peak_rss_mb"] if summary["workers"] else None,
        "sent_per_worker": [w.get("sent") for w in summary["workers"]] or [run["sent"]],
        "taken_over": summary["taken_over"],
        "lost_leases": summary["lost_leases"],
        # Every process of the machine (PostgreSQL and the sink too): how close to
        # saturated the CPUs were while this count sent.
        "machine_cpu_busy": round(busy / total, 2) if total else None,
    }


def _enqueue(store, edition_id: int) -> int:
    return store.enqueue_list(edition_id, "daily", NOW)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("DIGEST_TEST_POSTGRES_URL"))
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--workers", default="1,2,4", help="worker counts to send with")
    parser.add_argument(
        "--send-limit",
        type=int,
        default=None,
        help="rows to send per worker count (default: the whole ledger)",
    )
    parser.add_argument(
        "--full-last",
        action="store_true",
        help="the last worker count sends the whole ledger, whatever --send-limit says",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=4,
        help="DIGEST_SMTP_CONNECTIONS of each worker (digest's default: 4)",
    )
    parser.add_argument(
        "--no-send", dest="send", action="store_false", help="measure the ledger only"
    )
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
        sends = []
        if args.send:
            with sink() as (port, server), tempfile.TemporaryDirectory() as folder:
                counts = [int(n) for n in args.workers.split(",")]
                for index, count in enumerate(counts):
                    whole = args.full_last and index == len(counts) - 1
                    queued = _requeue(store, edition_id, None if whole else args.send_limit)
                    sends.append(
                        {
                            "queued": queued,
                            "server": server,
                            **_send(url, port, count, Path(folder) / f"w{count}", args.connections),
                        }
                    )
            base = next((r["rate_in_run"] for r in sends if r["workers"] == 1), None)
            for r in sends:
                r["scaling"] = round(r["rate_in_run"] / base, 2) if base else None
    finally:
        store.close()
        if not args.keep:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    print(
        json.dumps(
            {
                "engine": "postgresql",
                "subscribers": args.subscribers,
                "import_seconds": round(imported, 1),
                "ledger_rows": rows,
                "ledger_seconds": round(ledger, 1),
                "ledger_rows_per_second": round(rows / ledger) if ledger else None,
                "second_pass_rows": again,
                "second_pass_seconds": round(second, 1),
                "database_mb": round(size / 2**20),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "cpus": os.cpu_count(),
                "send": sends,
            }
        )
    )


if __name__ == "__main__":
    main()
