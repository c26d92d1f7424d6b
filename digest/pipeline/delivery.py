"""Delivery: the transports of a run, and one worker's part of an edition through them.

Used by ``sending`` (a run in this process) and by ``workers`` (each worker process), so
neither imports the other's module for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from digest.config import ListConfig, Settings
from digest.models import Edition, OutgoingMessage, Subscriber
from digest.pipeline.context import Context
from digest.pipeline.editions import Composer
from digest.send import (
    MaildirTransport,
    RetryPolicy,
    SendReport,
    SmtpTransport,
    Transport,
    send_edition,
)
from digest.send.dkim import DkimSigner, signer_for
from digest.send.relays import smtp_transports
from digest.send.signing import SigningPool


def make_transport(settings: Settings) -> Transport:
    relay = settings.relay
    if relay is None:
        return MaildirTransport(settings.outbox)
    return SmtpTransport(
        relay, connections=settings.smtp_connections, timeout=settings.smtp_timeout
    )


def make_transports(ctx: Context, now: Callable[[], datetime]) -> list[Transport]:
    """Every configured relay (each paced on its own), else the Maildir outbox."""
    relays: list[Transport] = list(smtp_transports(ctx.settings, ctx.store, now))
    return relays or [MaildirTransport(ctx.settings.outbox)]


def list_signer(settings: Settings, lst: ListConfig) -> DkimSigner | None:
    """The DKIM signer for a list's messages (None when signing is off)."""
    return signer_for(
        settings.dkim_key_file,
        selector=settings.dkim_selector,
        domain=settings.dkim_domain,
        sender_domain=lst.sender_address.rpartition("@")[2],
    )


async def deliver(
    ctx: Context,
    lst: ListConfig,
    edition: Edition,
    composer: Composer,
    transports: list[Transport],
    *,
    now: Callable[[], datetime],
    resend_unknown: bool,
    on_progress: Callable[[int, int], None] | None,
    exclusive: bool,
    report: SendReport | None = None,
) -> SendReport:
    """One worker's part of an edition: its due rows through the transports (the ledger is
    filled already), counted in ``report`` (a new one if None)."""
    settings = ctx.settings
    signer = list_signer(settings, lst)

    # RSA signatures are made in a process of their own, off the sending loop's core.
    signing = None if signer is None else SigningPool(signer)

    def build(
        subscriber: Subscriber,
    ) -> OutgoingMessage | Awaitable[OutgoingMessage | None] | None:
        # The subscriber as the ledger's claim read it: unsubscribes and section changes
        # made since the edition was created count. DKIM signs the exact bytes sent.
        message = composer.message(subscriber)
        return message if message is None or signing is None else signing.sign_message(message)

    try:
        return await send_edition(
            ctx.store,
            edition.stored_id,
            lst.name,
            build,
            transports,
            now=now,
            resend_unknown=resend_unknown,
            on_progress=on_progress,
            batch=settings.send_batch,
            retry=RetryPolicy(settings.send_retry_budget, settings.send_retry_backoff),
            max_failures=settings.smtp_max_failures,
            suppress_after=settings.suppress_after_bounces,
            exclusive=exclusive,
            lease=settings.send_lease,
            report=report,
        )
    finally:
        if signing is not None:
            signing.close()
