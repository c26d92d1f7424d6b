"""The relays a run sends through, as configured: one transport per relay, each with its own
connections, rate limits and TLS policy.

``DIGEST_SMTP_URL`` is the first relay; ``DIGEST_SMTP_RELAYS`` (a JSON list) adds more. A
relay's hourly allowance starts from what the ledger says it already took in the past hour,
so back-to-back runs cannot exceed it. Plain text to a relay off loopback is refused unless
``DIGEST_SMTP_TLS_RELAXED`` says otherwise.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import datetime, timedelta

from digest.config import Settings, SmtpRelay, parse_smtp_url
from digest.errors import ConfigError
from digest.send.pacing import RateLimiter
from digest.send.smtp import SmtpTransport
from digest.store.protocols import RelayHistory


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_tls(relay: SmtpRelay, setting: str, relaxed: bool) -> None:
    if relay.tls == "none" and not relaxed and not is_loopback(relay.host):
        raise ConfigError(
            f"{setting} would send in plain text to {relay.display}, which is not on loopback",
            "use smtp:// (STARTTLS) or smtps://, or set DIGEST_SMTP_TLS_RELAXED=true",
        )


def smtp_transports(
    settings: Settings, store: RelayHistory, now: Callable[[], datetime]
) -> list[SmtpTransport]:
    """The configured relays as transports (empty when none is configured)."""
    plan: list[tuple[SmtpRelay, str, int, float, int]] = []
    if settings.smtp_url is not None:
        plan.append(
            (
                parse_smtp_url(settings.smtp_url.get_secret_value()),
                "DIGEST_SMTP_URL",
                settings.smtp_connections,
                settings.smtp_per_second,
                settings.smtp_per_hour,
            )
        )
    for index, item in enumerate(settings.smtp_relays):
        plan.append(
            (
                parse_smtp_url(item.url.get_secret_value()),
                f"DIGEST_SMTP_RELAYS[{index}]",
                item.connections or settings.smtp_connections,
                settings.smtp_per_second if item.per_second is None else item.per_second,
                settings.smtp_per_hour if item.per_hour is None else item.per_hour,
            )
        )
    transports: list[SmtpTransport] = []
    for relay, setting, connections, per_second, per_hour in plan:
        _check_tls(relay, setting, settings.smtp_tls_relaxed)
        if any(t.label == relay.display for t in transports):
            raise ConfigError(f"{setting}: relay {relay.display} is listed twice")
        used = store.sent_since(relay.display, now() - timedelta(hours=1)) if per_hour else 0
        limiter = RateLimiter(per_second, per_hour, sent_last_hour=used)
        transports.append(
            SmtpTransport(
                relay,
                connections=connections,
                timeout=settings.smtp_timeout,
                data_timeout=settings.smtp_data_timeout,
                rotate_after=settings.smtp_rotate_after,
                limiter=limiter,
                ca_file=settings.smtp_ca_file,
                tls_relaxed=settings.smtp_tls_relaxed,
            )
        )
    return transports
