"""`digest send --workers N`: N processes send one edition of a list together (PostgreSQL).

The run that calls ``run_workers`` has created the edition and filled its ledger. Each worker
is a fresh process (spawned, not forked: no inherited connections or event loop) that opens
its own store connections and relay connections and sends its share of the edition, exactly
as a `digest send` on another machine would (``digest.send.engine``: leases, fenced claims,
rate shares). This process only watches: it reports the edition's progress from the ledger
and adds each worker's counts to the run's report when it ends. A worker that dies without a
report is named in the report's warnings; the others take over its rows once its lease
expires.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import resource
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from digest.config import ListConfig, Settings
from digest.errors import DigestError, SelectionError
from digest.models import PENDING_STATES, Edition
from digest.pipeline.context import Context, utcnow
from digest.pipeline.delivery import deliver, make_transports
from digest.pipeline.editions import Composer
from digest.send import SendReport

if TYPE_CHECKING:
    from multiprocessing.queues import Queue

    Outcomes = Queue[dict[str, Any]]  # each worker's report, as a dict


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def _worker(
    settings: Settings,
    list_name: str,
    edition_key: str,
    started: datetime,
    resend_unknown: bool,
    results: Outcomes,
) -> None:
    """A worker process: send this edition's rows until none is left, then report."""
    outcome: dict[str, Any] = {"pid": os.getpid()}
    try:
        ctx = Context.open(settings, sync=False)
        try:
            lst = ctx.newsletter.get_list(list_name)
            edition = ctx.store.edition(lst.name, edition_key)
            if edition is None:  # the run that started this worker created it
                raise SelectionError(f"no edition {edition_key} of the list {lst.name}")
            composer = Composer(ctx, edition, lst, started)
            transports = make_transports(ctx, utcnow)
            report = asyncio.run(
                deliver(
                    ctx,
                    lst,
                    edition,
                    composer,
                    transports,
                    now=utcnow,
                    resend_unknown=resend_unknown,
                    on_progress=None,
                    exclusive=False,
                )
            )
            outcome.update(
                report.counters(), stopped=report.stopped, elapsed=round(report.elapsed, 3)
            )
        finally:
            ctx.close()
    except DigestError as exc:
        outcome["stopped"] = str(exc)
    except KeyboardInterrupt:
        outcome["stopped"] = "interrupted"
    outcome["peak_rss_mb"] = _peak_rss_mb()
    results.put(outcome)


async def run_workers(
    ctx: Context,
    lst: ListConfig,
    edition: Edition,
    started: datetime,
    count: int,
    *,
    resend_unknown: bool,
    on_progress: Callable[[int, int], None] | None,
    report: SendReport,
) -> SendReport:
    """Start ``count`` worker processes on the edition, wait for all of them, and add up
    their counts in ``report`` (returned), with each worker's own in ``report.workers``."""
    store = ctx.store
    loop = asyncio.get_running_loop()
    began = loop.time()
    spawn = multiprocessing.get_context("spawn")
    results: Outcomes = spawn.Queue()
    processes = [
        spawn.Process(
            target=_worker,
            name=f"digest-send-{n + 1}",
            args=(ctx.settings, lst.name, edition.key, started, resend_unknown, results),
        )
        for n in range(count)
    ]
    # Rows waiting for their reader's zone (deliver_local) are no run's work yet.
    waiting = store.waiting(edition.stored_id, started)[0]
    total = _pending(store.counts(edition.stored_id)) - waiting
    for process in processes:
        process.start()
    outcomes: dict[int, dict] = {}
    try:
        while True:
            _drain(results, outcomes)
            if on_progress is not None:
                left = _pending(store.counts(edition.stored_id)) - waiting
                on_progress(max(0, total - left), total)
            if not any(p.is_alive() for p in processes):
                break
            await asyncio.sleep(0.5)
    finally:
        for process in processes:
            process.join(timeout=None if process.exitcode is not None else 30)
            if process.is_alive():
                process.terminate()
        _drain(results, outcomes)
    report.elapsed = loop.time() - began
    stops: list[str] = []
    for process in processes:
        got = outcomes.get(process.pid) if process.pid is not None else None
        if got is None:
            stops.append(
                f"worker {process.pid} ended (exit code {process.exitcode}) without a "
                "report; its rows were left to the others"
            )
            report.workers.append({"pid": process.pid, "exit_code": process.exitcode})
            continue
        report.add(got)
        if got.get("stopped"):
            stops.append(f"worker {process.pid}: {got['stopped']}")
        report.workers.append(got)
    report.counts = store.counts(edition.stored_id)
    problems = list(dict.fromkeys(stops))
    report.warnings.extend(problems)
    # A worker that ended early is not a stopped run when the others finished the edition.
    if stops and _pending(report.counts) > waiting:
        report.stopped = "; ".join(problems)
    report.rate = report.sent / report.elapsed if report.elapsed > 0 else 0.0
    return report


def _pending(counts: dict[str, int]) -> int:
    return sum(counts.get(state, 0) for state in PENDING_STATES)


def _drain(results: Outcomes, outcomes: dict[int, dict]) -> None:
    while True:
        try:
            got = results.get_nowait()
        except queue.Empty:
            return
        outcomes[got["pid"]] = got
