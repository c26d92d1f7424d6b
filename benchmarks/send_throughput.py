"""Sending throughput and memory, end to end through `digest send`; prints one JSON object.

- ``rounds`` (``--rounds``, 3), each with:

  - ``reference``: Postfix's C client ``smtp-source -d -s 10 -l SIZE -m COUNT`` against
    ``smtp-sink``, with messages of the size digest sends (null when Postfix is missing);
  - ``digest_default_connections``: ``digest send --json`` (a child process: edition,
    ledger, composition, SMTP) for ``--readers`` subscribers against the same sink, with the
    default settings (DIGEST_SMTP_CONNECTIONS: 10, as smtp-source's ``-s 10`` sessions),
    from a copy of one prepared store; its rate within the run, its rate over the whole
    process (start-up and enqueueing included), its CPU time and peak RSS;
  - ``digest``: the same over ``--connections`` connections, when given;

- ``ratio_default_connections`` (and ``ratio``): digest's rate over the reference's in the
  same round, ``in_run`` and ``process`` (whole process), median and spread over the rounds;
  these, not the rates, compare across machines and loads;
- ``load_average_before`` / ``_after``: the machine's (1, 5, 15 minutes; ``cores``);
- ``memory``: the same for ``--memory-readers`` subscribers (200,000), for the peak RSS of
  the sending process (``--memory-readers 0`` skips it: it takes a few minutes);
- ``paced``: the rate reached against ``--limit`` messages/s (DIGEST_SMTP_PER_SECOND).

``benchmarks/send_dkim.py`` runs the same send signed and unsigned, and the signer's cost.

The edition is the sample newsletter's five sections with ``--articles`` articles each (the
sample feeds' stories and follow-ups to them), about 50 KB per message: a realistic daily
digest with images, two parts, quoted-printable.

Postfix (Debian: ``apt-get install -y postfix``) provides smtp-sink and smtp-source; run as
root (smtp-sink drops to ``-u nobody``). Without it an aiosmtpd sink stands in and the
reference is null.

    .venv/bin/python benchmarks/send_throughput.py [--readers 20000] [--rounds 3] \
        [--memory-readers 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from runs import load_average, summary

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FOLLOW_UPS = ("", "Analysis", "What it means", "Reaction", "Explainer")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def sink(options: tuple[str, ...] = ()):
    """smtp-sink on a free loopback port (with ``options``, e.g. ``-p``: no PIPELINING), or
    an aiosmtpd sink in a child process."""
    port = free_port()
    if shutil.which("smtp-sink"):
        command = ["smtp-sink", "-u", "nobody", *options, "-c", f"127.0.0.1:{port}", "1000"]
    else:
        command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield port, command[0]
    finally:
        process.terminate()
        process.wait()


def reference(port: int, size: int, count: int) -> dict | None:
    if not shutil.which("smtp-source"):
        return None
    command = [
        "smtp-source",
        "-d",
        "-s",
        "10",
        "-l",
        str(size),
        "-m",
        str(count),
        f"127.0.0.1:{port}",
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    return {
        "command": " ".join(command[:-1]) + " 127.0.0.1:PORT",
        "messages": count,
        "bytes": size,
        "seconds": round(elapsed, 2),
        "rate": round(count / elapsed),
    }


# -- the edition ------------------------------------------------------------------------------


def write_feeds(folder: Path, articles: int) -> Path:
    """The sample feeds as RSS 2.0 with ``articles`` stories per section (the samples' own,
    then follow-ups to them), and a digest.toml taking them all; returns the toml's path."""
    import feedparser

    config = (ROOT / "digest.toml").read_text()
    config = config.replace("max_articles = 6", f"max_articles = {articles}")
    now = datetime.now(UTC)
    for feed in sorted((ROOT / "samples" / "feeds").iterdir()):
        parsed = feedparser.parse(feed.read_bytes())
        items = []
        for n in range(articles):
            entry = parsed.entries[n % len(parsed.entries)]
            round_ = n // len(parsed.entries)
            prefix = f"{FOLLOW_UPS[round_ % len(FOLLOW_UPS)]}: " if round_ else ""
            link = entry.link.replace(".html", f"-{round_}.html") if round_ else entry.link
            image = entry.get("media_content", [{}])[0].get("url")
            items.append(
                f"<item><title>{escape(prefix + entry.title)}</title><link>{escape(link)}</link>"
                f'<guid isPermaLink="false">{escape(link)}</guid>'
                f"<pubDate>{format_datetime(now - timedelta(minutes=10 * n + 1))}</pubDate>"
                f"<description><![CDATA[{entry.summary}]]></description>"
                + (
                    f'<media:content url="{escape(image)}" type="image/jpeg" medium="image" '
                    f'width="640" height="360"/>'
                    if image
                    else ""
                )
                + "</item>"
            )
        target = folder / (feed.stem + ".xml")
        target.write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
            'xmlns:media="http://search.yahoo.com/mrss/"><channel>'
            f"<title>{escape(parsed.feed.title)}</title><link>{escape(parsed.feed.link)}</link>"
            f"<description>{escape(parsed.feed.get('subtitle', ''))}</description>"
            + "".join(items)
            + "</channel></rss>\n",
            encoding="utf-8",
        )
        config = config.replace(f'"samples/feeds/{feed.name}"', f'"{target}"')
    path = folder / "digest.toml"
    path.write_text(config, encoding="utf-8")
    return path


def prepare(
    folder: Path, readers: int, articles: int, database_url: str | None = None
) -> dict[str, str]:
    """A store with today's edition's articles and ``readers`` subscribers of the list (in
    ``folder``'s SQLite file, or at ``database_url``)."""
    from digest.config import load_settings
    from digest.models import NewSubscriber
    from digest.pipeline import Context, fetch

    folder.mkdir(parents=True, exist_ok=True)
    env = {
        "DIGEST_CONFIG": str(write_feeds(folder, articles)),
        "DIGEST_DATABASE_URL": database_url or f"sqlite:///{folder / 'bench.db'}",
        "DIGEST_SECRET_KEY": "b" * 40,
        "DIGEST_BASE_URL": "https://news.example.com",
    }
    ctx = Context.open(
        load_settings(**{k.removeprefix("DIGEST_").lower(): v for k, v in env.items()})
    )
    now = datetime.now(UTC)
    fetch(ctx, now)
    for start in range(0, readers, 5000):
        ctx.store.add_subscribers(
            [
                NewSubscriber(
                    email=f"reader{i:06d}@example.org", name=f"Reader {i}", lists=("daily",)
                )
                for i in range(start, min(start + 5000, readers))
            ],
            now,
        )
    ctx.close()
    return env


def sample_message(env: dict[str, str]) -> bytes:
    from digest.config import load_settings
    from digest.models import Subscriber
    from digest.pipeline import Composer, Context, current_edition

    ctx = Context.open(
        load_settings(**{k.removeprefix("DIGEST_").lower(): v for k, v in env.items()})
    )
    lst = ctx.newsletter.lists[0]
    now = datetime.now(UTC)
    composer = Composer(ctx, current_edition(ctx, lst, now, create=False), lst, now)
    raw = composer.message(Subscriber(email="reader@example.org", name="Reader", id=1)).raw
    ctx.close()
    return raw


# -- runs ---------------------------------------------------------------------------------------


def digest_send(
    env: dict[str, str], port: int, folder: Path, *args: str, full: bool = False, **settings: str
) -> dict:
    """`digest send --json [args]` in a child process; its summary, wall time and peak RSS
    (``full``: with the whole JSON summary under "summary")."""
    run_env = dict(
        os.environ,
        **env,
        DIGEST_SMTP_URL=f"smtp://127.0.0.1:{port}",
        PYTHONPATH=str(ROOT),
        **settings,
    )
    output = folder / "summary.json"
    started = time.perf_counter()
    with output.open("w") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "digest", "send", "--json", *args],
            env=run_env,
            cwd=folder,
            stdout=stdout,
            stderr=subprocess.DEVNULL,
        )
        # wait4, not wait: the resource usage of this child alone (ru_maxrss in KiB).
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    summary = json.loads(output.read_text())
    return {
        "sent": summary["sent"],
        "status": summary["status"],
        "exit": process.returncode,
        "seconds": round(elapsed, 2),
        "rate_in_run": round(summary["rate"], 1),
        "rate_process": round(summary["sent"] / elapsed, 1),
        "limit": summary["limit"],
        "cpu_seconds": {"user": round(usage.ru_utime, 2), "system": round(usage.ru_stime, 2)},
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "settings": settings or None,
        **({"summary": summary} if full else {}),
    }


def sqlite_send(env: dict[str, str], port: int, prepared: Path, run: Path, **settings: str) -> dict:
    """``digest_send`` on a copy of the prepared SQLite store in ``prepared``."""
    shutil.copytree(prepared, run)
    try:
        run_env = dict(env, DIGEST_DATABASE_URL=f"sqlite:///{run / 'bench.db'}")
        return digest_send(run_env, port, run, **settings)
    finally:
        shutil.rmtree(run)


def ratios(rounds: list[dict], key: str) -> dict:
    """``key``'s rate over the reference's of the same round, over the rounds."""
    return {
        kind: summary([r[key][f"rate_{kind}"] / r["reference"]["rate"] for r in rounds])
        for kind in ("in_run", "process")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory-readers", type=int, default=200_000)
    parser.add_argument("--articles", type=int, default=10, help="articles per section")
    parser.add_argument("--limit", type=float, default=100.0)
    parser.add_argument("--paced-readers", type=int, default=500)
    parser.add_argument(
        "--connections", type=int, help="also send with this DIGEST_SMTP_CONNECTIONS"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="DIGEST_X=VALUE",
        help="another setting for the unpaced runs, e.g. DIGEST_SEND_BATCH=500",
    )
    args = parser.parse_args()
    defaults = dict(item.split("=", 1) for item in args.set)
    result: dict = {"readers": args.readers, "cores": os.cpu_count()}
    result["load_average_before"] = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prepared = folder / "prepared"
        env = prepare(prepared, args.readers, args.articles)
        raw = sample_message(env)
        result["message_bytes"] = len(raw)
        with sink() as (port, server):
            result["server"] = server
            rounds = []
            for n in range(args.rounds):
                round_ = {
                    "reference": reference(port, len(raw), args.readers),
                    "digest_default_connections": sqlite_send(
                        env, port, prepared, folder / f"d-{n}", **defaults
                    ),
                }
                if args.connections:
                    round_["digest"] = sqlite_send(
                        env,
                        port,
                        prepared,
                        folder / f"c-{n}",
                        **(defaults | {"DIGEST_SMTP_CONNECTIONS": str(args.connections)}),
                    )
                rounds.append(round_)
            result["rounds"] = rounds
            if all(r["reference"] for r in rounds):
                result["reference_rate"] = summary([r["reference"]["rate"] for r in rounds], 1)
                result["ratio_default_connections"] = ratios(rounds, "digest_default_connections")
                if args.connections:
                    result["ratio"] = ratios(rounds, "digest")
            paced_env = prepare(folder / "paced", args.paced_readers, args.articles)
            result["paced"] = digest_send(
                paced_env, port, folder / "paced", DIGEST_SMTP_PER_SECOND=str(args.limit)
            )
            result["paced"]["achieved_vs_limit"] = round(
                result["paced"]["rate_in_run"] / args.limit, 3
            )
            if args.memory_readers:
                memory_env = prepare(folder / "memory", args.memory_readers, args.articles)
                result["memory"] = digest_send(memory_env, port, folder / "memory", **defaults)
                result["memory"]["readers"] = args.memory_readers
    result["load_average_after"] = load_average()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
