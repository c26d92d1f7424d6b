"""Sending benchmarks; prints one JSON object.

- ``reference``: Postfix's C client ``smtp-source -d -s 10`` against ``smtp-sink``, with
  messages of the same size as digest's (skipped when Postfix is not installed);
- ``unpaced``: ``digest send`` end to end (ledger, composition, SMTP) for ``--readers``
  subscribers against the same sink; its rate, the ratio to the reference, the peak RSS;
- ``paced``: the rate reached against ``--limit`` messages/s (DIGEST_SMTP_PER_SECOND);
- ``dkim``: signing cost per message for RSA-2048 and Ed25519 on a real digest message.

Run as root for smtp-sink (``-u nobody``):  .venv/bin/python benchmarks/send.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def sink():
    """smtp-sink on a free loopback port, or an aiosmtpd sink in a child process."""
    port = free_port()
    if shutil.which("smtp-sink"):
        command = ["smtp-sink", "-u", "nobody", f"127.0.0.1:{port}", "1000"]
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
    started = time.perf_counter()
    subprocess.run(["smtp-source", "-d", "-s", "10", "-l", str(size), "-m", str(count),
                    f"127.0.0.1:{port}"], check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    return {"messages": count, "bytes": size, "seconds": round(elapsed, 2),
            "rate": round(count / elapsed)}


def prepare(folder: Path, readers: int) -> dict[str, str]:
    """A store with today's articles and ``readers`` subscribers; returns the environment."""
    from digest.config import load_settings
    from digest.pipeline import Context, fetch
    from digest.store.subscribers import NewSubscriber

    env = {"DIGEST_CONFIG": str(ROOT / "digest.toml"),
           "DIGEST_DATABASE_URL": f"sqlite:///{folder / 'bench.db'}",
           "DIGEST_SECRET_KEY": "b" * 40, "DIGEST_BASE_URL": "https://news.example.com"}
    ctx = Context.open(load_settings(**{k.removeprefix("DIGEST_").lower(): v
                                        for k, v in env.items()}))
    now = datetime.now(timezone.utc)
    fetch(ctx, now)
    batch = [NewSubscriber(email=f"reader{i:06d}@example.org", name=f"Reader {i}",
                           lists=("daily",)) for i in range(readers)]
    for i in range(0, readers, 5000):
        ctx.store.add_subscribers(batch[i:i + 5000], now)
    ctx.close()
    return env


def digest_send(env: dict[str, str], port: int, folder: Path, **settings: str) -> dict:
    run_env = dict(os.environ, **env, DIGEST_SMTP_URL=f"smtp://127.0.0.1:{port}",
                   PYTHONPATH=str(ROOT), **settings)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "digest", "send", "--json"], env=run_env,
                          cwd=folder, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    summary = json.loads(done.stdout)
    return {"sent": summary["sent"], "seconds": round(elapsed, 2),
            "rate_in_run": round(summary["rate"], 1),
            "rate_process": round(summary["sent"] / elapsed, 1),
            "limit": summary["limit"], "peak_rss_mb": round(max(peak, before) / 1024, 1),
            "status": summary["status"]}


def message_size(env: dict[str, str]) -> int:
    from digest.config import load_settings
    from digest.pipeline import Composer, Context, current_edition
    from digest.models import Subscriber

    ctx = Context.open(load_settings(**{k.removeprefix("DIGEST_").lower(): v
                                        for k, v in env.items()}))
    lst = ctx.newsletter.lists[0]
    now = datetime.now(timezone.utc)
    composer = Composer(ctx, current_edition(ctx, lst, now, create=False), lst, now)
    raw = composer.message(Subscriber(email="reader@example.org", name="Reader", id=1)).raw
    ctx.close()
    return raw


def dkim_cost(raw: bytes, rounds: int = 500) -> dict:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    from digest.send import DkimSigner

    out = {}
    for name, key in (("rsa-2048", rsa.generate_private_key(public_exponent=65537,
                                                            key_size=2048)),
                      ("ed25519", ed25519.Ed25519PrivateKey.generate())):
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        signer = DkimSigner(pem, domain="example.com", selector="bench")
        started = time.perf_counter()
        for _ in range(rounds):
            signer.sign(raw)
        out[name] = {"ms_per_message": round((time.perf_counter() - started) / rounds * 1000,
                                             3)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=20_000)
    parser.add_argument("--limit", type=float, default=100.0)
    parser.add_argument("--paced-readers", type=int, default=500)
    args = parser.parse_args()
    result: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "big").mkdir()
        (folder / "paced").mkdir()
        env = prepare(folder / "big", args.readers)
        raw = message_size(env)
        result["message_bytes"] = len(raw)
        result["dkim"] = dkim_cost(raw)
        with sink() as (port, server):
            result["server"] = server
            result["reference"] = reference(port, len(raw), min(args.readers, 20_000))
            result["unpaced"] = digest_send(env, port, folder / "big")
            paced_env = prepare(folder / "paced", args.paced_readers)
            result["paced"] = digest_send(paced_env, port, folder / "paced",
                                          DIGEST_SMTP_PER_SECOND=str(args.limit))
        if result["reference"]:
            result["ratio"] = round(result["unpaced"]["rate_in_run"]
                                    / result["reference"]["rate"], 3)
        result["paced"]["achieved_vs_limit"] = round(
            result["paced"]["rate_in_run"] / args.limit, 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
