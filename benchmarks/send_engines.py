"""`digest send` on SQLite and on PostgreSQL in the same run, against one sink; prints JSON.

Each round sends the same edition to ``--readers`` subscribers (the edition of
``send_throughput.py``, about 50 KB a message) once per store, against one sink (Postfix's
``smtp-sink``, else an aiosmtpd child process), with Postfix's ``smtp-source`` as the C
reference when installed:

- ``sqlite``: one worker, from a copy of one prepared SQLite store;
- ``postgresql``: one worker, from a copy (``CREATE DATABASE ... TEMPLATE``) of one prepared
  PostgreSQL database on the server of ``--url`` (default: DIGEST_TEST_POSTGRES_URL; the
  role needs CREATEDB);
- ``postgresql_N_workers`` for each N of ``--workers`` above 1 (``digest send --workers N``).

Printed: each send's rate within the run and over the whole process, CPU time and peak RSS;
per round the ratio of PostgreSQL's rates to SQLite's (and of each to the reference), median
and spread over the rounds; the load average before and after. On a shared machine only the
ratios within one run compare.

    .venv/bin/python benchmarks/send_engines.py [--readers 20000] [--rounds 3] \\
        [--workers 1,2] [--url postgresql://user:pw@127.0.0.1/db]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from runs import load_average, summary
from send_throughput import digest_send, prepare, reference, sample_message, sink, sqlite_send
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url


def _admin(url: str):
    return create_engine(
        make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )


def _url(base: str, database: str) -> str:
    return make_url(base).set(database=database).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("DIGEST_TEST_POSTGRES_URL"))
    parser.add_argument("--readers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--articles", type=int, default=10, help="articles per section")
    parser.add_argument("--workers", default="1", help="PostgreSQL worker counts, e.g. 1,2")
    parser.add_argument(
        "--connections", type=int, default=10, help="DIGEST_SMTP_CONNECTIONS (digest's default: 10)"
    )
    args = parser.parse_args()
    if not args.url:
        parser.error("give --url postgresql://... (or set DIGEST_TEST_POSTGRES_URL)")
    counts = sorted({1, *(int(n) for n in args.workers.split(","))})
    kinds = ["sqlite"] + ["postgresql" if n == 1 else f"postgresql_{n}_workers" for n in counts]
    settings = {"DIGEST_SMTP_CONNECTIONS": str(args.connections)}
    result: dict = {"readers": args.readers, "cores": os.cpu_count(), "settings": settings}
    result["load_average_before"] = load_average()
    admin = _admin(args.url)
    template = f"digest_bench_engines_{os.getpid()}"
    made: list[str] = []
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{template}"')
        made.append(template)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            env = prepare(folder / "prepared", args.readers, args.articles)
            pg_env = prepare(
                folder / "pg-prepared", args.readers, args.articles, _url(args.url, template)
            )
            size = len(sample_message(env))
            result["message_bytes"] = size
            rounds = []
            with sink() as (port, server):
                result["server"] = server
                for n in range(args.rounds):
                    round_: dict = {"reference": reference(port, size, args.readers)}
                    round_["sqlite"] = sqlite_send(
                        env, port, folder / "prepared", folder / f"s-{n}", **settings
                    )
                    for count, kind in zip(counts, kinds[1:], strict=True):
                        database = f"{template}_{n}_{count}"
                        with admin.connect() as conn:
                            conn.exec_driver_sql(
                                f'CREATE DATABASE "{database}" TEMPLATE "{template}"'
                            )
                        made.append(database)
                        run_env = dict(pg_env, DIGEST_DATABASE_URL=_url(args.url, database))
                        round_[kind] = digest_send(
                            run_env,
                            port,
                            folder / "pg-prepared",
                            "--workers",
                            str(count),
                            **settings,
                        )
                    rounds.append(round_)
        for r in rounds:
            for kind in kinds:
                if r[kind]["sent"] != args.readers:
                    raise SystemExit(f"{kind}: sent {r[kind]['sent']} of {args.readers}")
        result["rounds"] = rounds
        for what in ("in_run", "process"):
            rate = f"rate_{what}"
            result[f"rate_{what}"] = {k: summary([r[k][rate] for r in rounds], 1) for k in kinds}
            result[f"ratio_to_sqlite_{what}"] = {
                k: summary([r[k][rate] / r["sqlite"][rate] for r in rounds]) for k in kinds[1:]
            }
            if all(r["reference"] for r in rounds):
                result[f"ratio_to_reference_{what}"] = {
                    k: summary([r[k][rate] / r["reference"]["rate"] for r in rounds]) for k in kinds
                }
    finally:
        with admin.connect() as conn:
            for database in reversed(made):
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.dispose()
    result["load_average_after"] = load_average()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
