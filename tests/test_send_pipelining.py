"""PIPELINING (RFC 2920) against a real aiosmtpd server: MAIL, RCPT and DATA go in one write
when the relay offers it, one at a time when it does not, and the replies (which such a relay
sends together) are read in order.

Every failure of the envelope is mapped as step by step: the tests of test_send.py and
test_send_faults.py that use ``mail_server`` run against a pipelining relay too.
"""

from __future__ import annotations

from digest.send import SmtpTransport
from tests.support.sending import ledger, queued_edition, send
from tests.support.smtpd import smtp_server

ENVELOPE_FROM = b"MAIL FROM:<bounces@digest.example>"


def test_mail_rcpt_and_data_arrive_in_one_write_when_the_relay_offers_pipelining(store):
    edition_id, emails = queued_edition(store, 4)
    with smtp_server(pipelining=True) as server:
        report = send(store, edition_id, emails, SmtpTransport(server.relay(), connections=1))

        groups = server.handler.commands_read_together()
        received = {m.rcpt_tos[0]: m.raw for m in server.handler.messages}
    assert report.counts == {"sent": 4}
    assert sorted(groups) == sorted(
        [ENVELOPE_FROM, f"RCPT TO:<{email}>".encode(), b"DATA"] for email in emails.values()
    )
    assert sorted(received) == sorted(emails.values())
    assert all(raw.startswith(b"From: Daily") for raw in received.values())


def test_each_command_waits_for_its_reply_when_the_relay_does_not_offer_pipelining(store):
    edition_id, emails = queued_edition(store, 3)
    with smtp_server(pipelining=False) as server:
        report = send(store, edition_id, emails, SmtpTransport(server.relay(), connections=1))

        groups = server.handler.commands_read_together()
        commands = [c for c in server.handler.chunks if c.startswith((b"MAIL", b"RCPT", b"DATA"))]
    assert report.counts == {"sent": 3}
    assert groups == []
    assert commands.count(ENVELOPE_FROM + b"\r\n") == 3
    assert commands.count(b"DATA\r\n") == 3


def test_replies_sent_together_are_each_read_in_order_over_one_connection(store):
    edition_id, emails = queued_edition(store, 6)
    refused = sorted(emails)[2]
    with smtp_server(pipelining=True) as server:
        server.handler.rcpt_replies[emails[refused]] = "550 5.1.1 No such user"
        report = send(store, edition_id, emails, SmtpTransport(server.relay(), connections=1))

        connections = server.handler.connections
        recipients = server.handler.recipients()
    # One reply read out of order would pair a 354 with a MAIL or stall the connection.
    assert report.counts == {"sent": 5, "failed": 1}
    assert ledger(store, edition_id) == {refused: ("failed", 550, "5.1.1 No such user")}
    assert sorted(recipients) == sorted(set(emails.values()) - {emails[refused]})
    assert connections == 1


def test_a_relay_that_takes_data_after_refusing_the_recipient_gets_an_empty_message(store):
    edition_id, emails = queued_edition(store, 2)
    refused = min(emails)
    with smtp_server(pipelining=True) as server:
        server.handler.data_after_refused_rcpt = True
        server.handler.rcpt_replies[emails[refused]] = "450 4.2.1 Mailbox busy"
        report = send(store, edition_id, emails, SmtpTransport(server.relay(), connections=1))

        received = {m.rcpt_tos[0]: m.raw for m in server.handler.messages}
    # RFC 2920 3.1: a lone dot ends the DATA the relay took; the body never goes.
    assert received[emails[refused]] == b""
    assert received[emails[max(emails)]].startswith(b"From: Daily")
    assert ledger(store, edition_id) == {refused: ("deferred", 450, "4.2.1 Mailbox busy")}
    assert report.counts == {"sent": 1, "deferred": 1}
