"""Sending: the ledger-driven engine and the transports it delivers through.

``send_edition`` walks an edition's delivery ledger and hands each due message to a
``Transport``: ``SmtpTransport`` (a relay, over several reused connections) or
``MaildirTransport`` (the local outbox used when no relay is configured, and for previews).
"""

from digest.send.engine import SendReport, Transport, TransportSession, send_edition
from digest.send.outbox import MaildirTransport
from digest.send.smtp import SmtpTransport

__all__ = ["MaildirTransport", "SendReport", "SmtpTransport", "Transport", "TransportSession",
           "send_edition"]
