"""Sending: the ledger-driven engine and the transports it delivers through.

``send_edition`` walks an edition's delivery ledger and hands each due message to the
transports: ``SmtpTransport`` (a relay, over several reused connections, paced by a
``RateLimiter``) or ``MaildirTransport`` (the local outbox used when no relay is configured,
and for previews). ``run_lock`` keeps runs of one list from overlapping; ``DkimSigner`` signs
the exact bytes sent (``signing.SigningPool``: RSA signatures in a worker process).
``SendReport`` says what a run did, from the engine's counts to the summary `digest send`
prints.
"""

from digest.send.dkim import DkimSigner
from digest.send.engine import RetryPolicy, Transport, TransportSession, send_edition
from digest.send.lock import RunLocked, run_lock
from digest.send.outbox import MaildirTransport
from digest.send.pacing import RateLimiter, TokenBucket
from digest.send.report import SendReport, SendStatus
from digest.send.smtp import SmtpTransport

__all__ = [
    "DkimSigner",
    "MaildirTransport",
    "RateLimiter",
    "RetryPolicy",
    "RunLocked",
    "SendReport",
    "SendStatus",
    "SmtpTransport",
    "TokenBucket",
    "Transport",
    "TransportSession",
    "run_lock",
    "send_edition",
]
