"""`digest send` with DKIM against the same send unsigned, in the same run; prints JSON.

Three rounds; each round sends the same edition to ``--readers`` subscribers three times, from
copies of one prepared store, against one sink (Postfix's ``smtp-sink`` when installed, else
an aiosmtpd child process): unsigned, signed with Ed25519, signed with RSA-2048. For each
mode: the rate within the run (``digest send --json``'s) over the rounds, median and spread;
the ratio of each signed mode's median to the unsigned median, and the median of the
per-round ratios (each signed send against the unsigned one just before it, which a change
of load during the run affects least). ``sends`` has each send's wall time, whole-process
rate and CPU time (the sending process's, with its signing process's). Also the signer's
own cost per message on the
benchmark's message: the whole body canonicalized, and by its template's constant pieces (as
`digest send` signs, with RSA signatures made by a worker process): CPU time of this
process per message. The load average is taken before and after.

    .venv/bin/python benchmarks/send_dkim.py [--readers 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from runs import load_average, summary
from send_throughput import ROOT, digest_send, prepare, sink

MODES = ("unsigned", "ed25519", "rsa-2048")


def write_key(folder: Path, mode: str) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    key = (
        ed25519.Ed25519PrivateKey.generate()
        if mode == "ed25519"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    path = folder / f"{mode}.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def signing_cost(env: dict[str, str], keys: dict[str, Path], rounds: int = 300) -> dict:
    """ms per message to sign the benchmark's message, whole and by pieces, per key."""
    sys.path.insert(0, str(ROOT))
    from digest.config import load_settings
    from digest.models import Subscriber
    from digest.pipeline import Composer, Context, current_edition
    from digest.send import DkimSigner

    ctx = Context.open(
        load_settings(**{k.removeprefix("DIGEST_").lower(): v for k, v in env.items()})
    )
    lst = ctx.newsletter.lists[0]
    now = datetime.now(UTC)
    composer = Composer(ctx, current_edition(ctx, lst, now, create=True), lst, now)
    messages = [
        composer.message(Subscriber(email=f"reader{i}@example.org", name="Reader", id=i))
        for i in range(1, rounds + 1)
    ]
    ctx.close()
    out: dict = {"message_bytes": len(messages[0].raw)}  # type: ignore[union-attr]
    for mode, path in keys.items():
        signer = DkimSigner.from_file(path, domain="example.com", selector="bench")
        started = time.process_time()
        for message in messages:
            signer.sign(message.raw)  # type: ignore[union-attr]
        whole = (time.process_time() - started) / rounds * 1000
        started = time.process_time()
        for message in messages:
            signer.sign_message(message)  # type: ignore[arg-type]
        pieces = (time.process_time() - started) / rounds * 1000
        out[mode] = {
            "whole_body_cpu_ms": round(whole, 3),
            "by_pieces_cpu_ms": round(pieces, 3),
            "as_digest_send_signs_cpu_ms": round(pool_cost(signer, messages), 3),
        }
    return out


def pool_cost(signer, messages: list) -> float:
    """CPU ms per message this process spends signing through a ``SigningPool``, ten
    messages at a time as ten sessions would (for RSA, the signatures are made by the pool's
    process, whose CPU is not counted: it runs on another core)."""
    from digest.send.signing import SigningPool

    pool = SigningPool(signer)

    async def sign_all() -> None:
        await pool.sign_message(messages[0])  # the worker process is up
        started = time.process_time()
        for start in range(0, len(messages), 10):
            await asyncio.gather(*(pool.sign_message(m) for m in messages[start : start + 10]))
        spent.append(time.process_time() - started)

    spent: list[float] = []
    try:
        asyncio.run(sign_all())
    finally:
        pool.close()
    return spent[0] / len(messages) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--articles", type=int, default=10, help="articles per section")
    parser.add_argument("--connections", type=int, default=10)
    args = parser.parse_args()
    result: dict = {"readers": args.readers, "cores": os.cpu_count()}
    result["load_average_before"] = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = prepare(folder / "prepared", args.readers, args.articles)
        keys = {mode: write_key(folder, mode) for mode in MODES[1:]}
        rates: dict[str, list[float]] = {mode: [] for mode in MODES}
        sends: dict[str, list[dict]] = {mode: [] for mode in MODES}
        with sink() as (port, server):
            result["server"] = server
            for round_ in range(args.rounds):
                for mode in MODES:
                    run = folder / f"{mode}-{round_}"
                    shutil.copytree(folder / "prepared", run)
                    run_env = dict(env, DIGEST_DATABASE_URL=f"sqlite:///{run / 'bench.db'}")
                    settings = {"DIGEST_SMTP_CONNECTIONS": str(args.connections)}
                    if mode != "unsigned":
                        settings |= {
                            "DIGEST_DKIM_KEY_FILE": str(keys[mode]),
                            "DIGEST_DKIM_SELECTOR": "bench",
                        }
                    sent = digest_send(run_env, port, run, **settings)
                    if sent["sent"] != args.readers:
                        raise SystemExit(f"{mode}: sent {sent['sent']} of {args.readers}")
                    rates[mode].append(sent["rate_in_run"])
                    sends[mode].append(
                        {k: sent[k] for k in ("seconds", "rate_process", "cpu_seconds")}
                    )
                    shutil.rmtree(run)
        result["rate_in_run"] = {mode: summary(rates[mode], 1) for mode in MODES}
        result["ratio_to_unsigned"] = {
            mode: {
                "of_medians": round(
                    statistics.median(rates[mode]) / statistics.median(rates["unsigned"]), 3
                ),
                "median_per_round": round(
                    statistics.median(
                        s / u for s, u in zip(rates[mode], rates["unsigned"], strict=True)
                    ),
                    3,
                ),
            }
            for mode in MODES[1:]
        }
        result["sends"] = sends
        result["signing"] = signing_cost(env, keys)
    result["load_average_after"] = load_average()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
