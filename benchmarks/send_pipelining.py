"""The SMTP transport alone, with and without PIPELINING, against Postfix's smtp-sink; JSON.

Each round sends ``--messages`` messages of about 50 KB over ``--connections`` connections
of ``SmtpTransport`` (no store, no composition) to ``smtp-sink``, once as started (it offers
PIPELINING) and once with ``smtp-sink -p`` (it does not), in alternating order. Printed per
mode: messages/s and this process's CPU time per message, median and spread over the rounds,
and the ratios pipelined / step by step of the same round; the load average before and
after. The CPU per message is what the event loop's thread saves: on a loaded machine the
rates vary more than it does.

    .venv/bin/python benchmarks/send_pipelining.py [--messages 1500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runs import load_average, summary  # noqa: E402
from send_throughput import sink  # noqa: E402

from digest.config import SmtpRelay  # noqa: E402
from digest.models import OutgoingMessage  # noqa: E402
from digest.send import SmtpTransport  # noqa: E402

RAW = (b"Subject: benchmark\r\n\r\n" + b"y" * 70 + b"\r\n") * 700  # about 50 KB


async def _session(transport: SmtpTransport, count: int) -> None:
    async with transport.session() as session:
        for n in range(count):
            message = OutgoingMessage(1, n, f"r{n}@example.org", "b@example.org", f"<{n}@b>", RAW)
            result = await session.deliver(message, before_data=lambda: None)
            if result.state.value != "sent":
                raise SystemExit(f"not sent: {result}")


def _send(pipelining: bool, messages: int, connections: int) -> dict:
    with sink(() if pipelining else ("-p",)) as (port, _):
        transport = SmtpTransport(
            SmtpRelay(host="127.0.0.1", port=port, tls="none"), connections=connections
        )
        each = messages // connections
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()

        async def run() -> None:
            await asyncio.gather(*(_session(transport, each) for _ in range(connections)))

        asyncio.run(run())
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
    sent = each * connections
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {"rate": sent / elapsed, "cpu_us_per_message": cpu / sent * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not shutil.which("smtp-sink"):
        raise SystemExit("needs Postfix's smtp-sink (Debian: apt-get install -y postfix)")
    result: dict = {
        "messages": args.messages,
        "connections": args.connections,
        "cores": os.cpu_count(),
        "load_average_before": load_average(),
    }
    runs: dict[str, list[dict]] = {"pipelined": [], "step_by_step": []}
    for n in range(args.rounds):
        modes = [True, False] if n % 2 == 0 else [False, True]
        for pipelining in modes:
            key = "pipelined" if pipelining else "step_by_step"
            runs[key].append(_send(pipelining, args.messages, args.connections))
    for key, values in runs.items():
        result[key] = {
            "rate": summary([v["rate"] for v in values], 1),
            "cpu_us_per_message": summary([v["cpu_us_per_message"] for v in values], 1),
        }
    pairs = list(zip(runs["pipelined"], runs["step_by_step"], strict=True))
    result["pipelined_over_step_by_step"] = {
        "rate": summary([p["rate"] / s["rate"] for p, s in pairs]),
        "cpu_us_per_message": summary(
            [p["cpu_us_per_message"] / s["cpu_us_per_message"] for p, s in pairs]
        ),
    }
    result["load_average_after"] = load_average()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
