"""Import benchmark: a 100,000-row CSV into a fresh SQLite store, then the same file again.

Prints one JSON object: rows, seconds for the first import (parse + validate + commit), rows
per second, and seconds for the second import (which must change nothing). The target is
10 s or less for the first import.

    .venv/bin/python benchmarks/import.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from digest import pipeline
from digest.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ["internet-space", "military-space", "drone-space", "missile-defense", "launch-pad"]


def write_csv(path: Path, rows: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("email,name,lists,sections,status\n")
        for i in range(rows):
            sections = ";".join(SECTIONS[j] for j in range(5) if (i >> j) & 1)
            fh.write(f"reader{i}@example{i % 97}.com,Reader {i},daily,{sections},active\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "subscribers.csv"
        write_csv(source, args.rows)
        settings = load_settings(
            config=ROOT / "digest.toml", database_url=f"sqlite:///{folder / 'bench.db'}"
        )
        ctx = pipeline.Context.open(settings)
        try:
            started = time.perf_counter()
            first = pipeline.import_subscribers(ctx, source, pipeline.utcnow())
            elapsed = time.perf_counter() - started
            started = time.perf_counter()
            second = pipeline.import_subscribers(ctx, source, pipeline.utcnow())
            again = time.perf_counter() - started
        finally:
            ctx.close()
    print(
        json.dumps(
            {
                "rows": args.rows,
                "added": first.added,
                "rejected": len(first.rejected),
                "seconds": round(elapsed, 2),
                "rows_per_second": round(args.rows / elapsed),
                "second_import_seconds": round(again, 2),
                "second_import_unchanged": second.skipped,
                "target_seconds": 10,
                "within_target": elapsed <= 10,
            }
        )
    )


if __name__ == "__main__":
    main()
