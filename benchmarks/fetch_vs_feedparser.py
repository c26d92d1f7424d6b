"""`digest fetch` against feedparser: ingest a corpus of real feed files, and parse the same
files with a bare ``feedparser.parse``; prints JSON.

The corpus is a folder of feed files (``--corpus``, default /work/shared/corpus/feeds: real
RSS and Atom files from public feed parsers' test fixtures). digest's side is what
`digest fetch` runs (``digest.ingest.ingest``: fetch each file, parse it with digest's
options, clean its text, store its articles in a fresh SQLite store), in this process, so
the interpreter's start-up is not counted; feedparser's is a plain loop reading each file and
parsing it with feedparser's defaults. Each round runs both, in turn; the figure is their
ratio (digest ÷ feedparser, under 1: digest is faster), whose median and spread over the
rounds are printed with the seconds of each side and the load average before and after.
Wall time and CPU time (this process and its worker processes) are both given: on a busy
machine the wall time of a parallel run says little, compare ratios within one run.

``--variants`` adds digest's ways of parsing in the same rounds: a plain loop (one fetching
thread, parsing in place), threads (``fetch_concurrency`` of them, parsing in place), worker
processes for large documents (the default: one per core) and every document in a pool of 2.

    .venv/bin/python benchmarks/fetch_vs_feedparser.py [--rounds 3] [--variants]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import feedparser
from runs import load_average, summary

from digest.config import ListConfig, Newsletter, SectionConfig
from digest.ingest import ingest
from digest.store import open_store

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
CORPUS = Path("/work/shared/corpus/feeds")
SUFFIXES = {".xml", ".rss", ".atom", ".rdf"}

# digest's ways of parsing: ingest's keywords for each.
VARIANTS: dict[str, dict] = {
    "digest fetch": {},
    "plain loop": {"concurrency": 1, "parse_processes": 0},
    "threads, in place": {"concurrency": 8, "parse_processes": 0},
    "every document in a pool of 2": {"parse_processes": 2, "pool_bytes": 0},
}


def corpus_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def newsletter(files: list[Path]) -> Newsletter:
    return Newsletter(
        name="Bench",
        website="https://news.example",
        lists=(
            ListConfig(
                name="daily", title="Daily", sender="b@news.example", postal_address="1 Road"
            ),
        ),
        sections=(
            SectionConfig(slug="corpus", title="Corpus", feeds=tuple(str(p) for p in files)),
        ),
    )


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (the parsing workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(run: Callable[[], object]) -> tuple[float, float, object]:
    cpu, wall = cpu_seconds(), time.perf_counter()
    result = run()
    return time.perf_counter() - wall, cpu_seconds() - cpu, result


def bare(files: list[Path]) -> int:
    return sum(len(feedparser.parse(path.read_bytes()).entries) for path in files)


def digest_fetch(letter: Newsletter, options: dict) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{os.path.join(folder, 'bench.db')}")
        try:
            report = ingest(store, letter, NOW, **options)
        finally:
            store.close()
    return {"added": report.added, "failed": report.failed, "parsed": report.parses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", action="store_true", help="also digest's other ways")
    args = parser.parse_args()
    files = corpus_files(args.corpus)
    letter = newsletter(files)
    variants = VARIANTS if args.variants else {"digest fetch": VARIANTS["digest fetch"]}
    result: dict = {
        "cores": os.cpu_count(),
        "load_average_before": load_average(),
        "corpus": {"files": len(files), "bytes": sum(p.stat().st_size for p in files)},
    }
    walls: dict[str, list[float]] = {"feedparser.parse": []}
    cpus: dict[str, list[float]] = {"feedparser.parse": []}
    outcome: dict[str, object] = {}
    for _ in range(args.rounds):
        wall, cpu, entries = timed(lambda: bare(files))
        walls["feedparser.parse"].append(wall)
        cpus["feedparser.parse"].append(cpu)
        outcome["feedparser.parse"] = {"entries": entries}
        for name, options in variants.items():
            wall, cpu, outcome[name] = timed(lambda options=options: digest_fetch(letter, options))
            walls.setdefault(name, []).append(wall)
            cpus.setdefault(name, []).append(cpu)
    base_wall, base_cpu = walls["feedparser.parse"], cpus["feedparser.parse"]
    result["wall_seconds"] = {name: summary(values) for name, values in walls.items()}
    result["cpu_seconds"] = {name: summary(values) for name, values in cpus.items()}
    result["ratio_to_feedparser"] = {
        name: {
            "wall_per_round": summary([v / b for v, b in zip(walls[name], base_wall, strict=True)]),
            "cpu_per_round": summary([v / b for v, b in zip(cpus[name], base_cpu, strict=True)]),
        }
        for name in variants
    }
    result["outcome"] = outcome
    result["load_average_after"] = load_average()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
