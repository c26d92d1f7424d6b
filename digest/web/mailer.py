"""Sends the confirmation mails of queued sign-ups, outside the requests.

The sign-up form only queues (``pipeline.request_subscription``); this task, started with the
app, drains the queue through ``pipeline.send_confirmations`` a second after a sign-up wakes it
(the mailing then happens well apart from the request, whose time shows nothing of it, and
sign-ups arriving together go in one batch), and every half minute (a relay that was down,
sign-ups queued by another server process). It runs in a worker thread with its own event
loop, so a slow relay never stalls a page.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool

from digest import pipeline
from digest.web.logs import redact_logger

log = redact_logger("digest.web")


class ConfirmationMailer:
    def __init__(self, ctx: pipeline.Context, interval: float = 30.0, delay: float = 1.0):
        self.ctx, self.interval, self.delay = ctx, interval, delay
        self._wake: asyncio.Event | None = None

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def drain(self) -> pipeline.ConfirmationSummary:
        return asyncio.run(pipeline.send_confirmations(self.ctx, datetime.now(UTC)))

    async def run(self) -> None:
        self._wake = asyncio.Event()
        while True:
            self._wake.clear()
            try:
                await run_in_threadpool(self.drain)
            except Exception as exc:  # the next round tries again; the server keeps serving
                log.error("confirmation mails: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
                await asyncio.sleep(self.delay)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
