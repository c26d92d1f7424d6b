"""Start-up: the wall time of short commands against `python -c pass`; prints JSON.

Each command is run as its users run it (the ``digest`` script installed next to this
Python, else ``python -m digest``), in a folder with a SQLite store of ``--subscribers``
subscribers. Three rounds; in each, every command runs ``--repeat`` times in turn and its
round figure is the median of those; then the median and spread over the rounds, and each
command's ratio to `python -c pass` (the interpreter's own start-up, site packages
included) within the run. The load average is taken before and after.

    .venv/bin/python benchmarks/startup.py [--rounds 3] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runs import load_average, summary

ROOT = Path(__file__).resolve().parent.parent


def digest_command() -> list[str]:
    script = Path(sys.executable).with_name("digest")
    return [str(script)] if script.exists() else [sys.executable, "-m", "digest"]


def wall(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--subscribers", type=int, default=1000)
    args = parser.parse_args()
    digest = digest_command()
    result: dict = {"cores": os.cpu_count(), "load_average_before": load_average()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = dict(
            os.environ,
            DIGEST_CONFIG=str(ROOT / "digest.toml"),
            DIGEST_DATABASE_URL=f"sqlite:///{folder / 'bench.db'}",
            DIGEST_SECRET_KEY="s" * 40,
            DIGEST_BASE_URL="https://news.example.com",
        )
        subprocess.run([*digest, "init"], cwd=folder, env=env, check=True, capture_output=True)
        (folder / "readers.csv").write_text(
            "email,name,lists\n"
            + "".join(f"r{i}@example.org,Reader {i},daily\n" for i in range(args.subscribers))
        )
        subprocess.run(
            [*digest, "subscribers", "import", "readers.csv"],
            cwd=folder,
            env=env,
            check=True,
            capture_output=True,
        )
        added = iter(range(10**6))
        commands = {
            "python -c pass": lambda: [sys.executable, "-c", "pass"],
            "digest --help": lambda: [*digest, "--help"],
            "digest subscribers list": lambda: [*digest, "subscribers", "list", "-f", "csv"],
            "digest subscribers add": lambda: [
                *digest,
                "subscribers",
                "add",
                f"new{next(added)}@example.org",
            ],
        }
        rounds: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, command in commands.items():
                times = [wall(command(), folder, env) for _ in range(args.repeat)]
                rounds[name].append(statistics.median(times))
        shutil.rmtree(folder, ignore_errors=True)
    base = statistics.median(rounds["python -c pass"])
    result["seconds"] = {name: summary(values) for name, values in rounds.items()}
    result["ratio_to_python"] = {
        name: {
            "of_medians": round(statistics.median(values) / base, 1),
            "median_per_round": round(
                statistics.median(
                    v / b for v, b in zip(values, rounds["python -c pass"], strict=True)
                ),
                1,
            ),
        }
        for name, values in rounds.items()
        if name != "python -c pass"
    }
    result["load_average_after"] = load_average()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
