"""The sender against a real SMTP server (aiosmtpd) and a real SQLite ledger.

Never twice, never lost: every test counts what the server received. Each test using
``mail_server`` runs against a relay that offers PIPELINING and one that does not.
"""

from __future__ import annotations

import asyncio
import mailbox
import random
import subprocess
import sys
from collections import Counter

import pytest
from aiosmtpd.smtp import AuthResult

from digest.config import SmtpRelay
from digest.errors import SendError
from digest.models import DeliveryState, OutgoingMessage, SubscriberStatus
from digest.send import MaildirTransport, RetryPolicy, SmtpTransport, send_edition
from digest.store.protocols import SendStore
from tests.support.narrowed import Narrowed
from tests.support.sending import (
    by_email,
    clock,
    connect,
    ledger,
    message_for,
    queued_edition,
    send,
)
from tests.support.smtpd import free_port, smtp_server
from tests.support.values import NOW, ROOT

pytestmark = pytest.mark.pipelined_too

PASSWORD = "pa55-w0rd-never-shown"

# A sending process to kill: the same engine and messages as the tests, in a child process.
CHILD = """
import asyncio, sys
from digest.config import SmtpRelay
from digest.send import SmtpTransport, send_edition
from digest.store import open_store
from tests.support.sending import builder, clock

db_url, port, edition_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = open_store(db_url)
emails = {s.id: s.email for s in store.recipients("daily")}
transport = SmtpTransport(SmtpRelay(host="127.0.0.1", port=port, tls="none"), connections=2)
asyncio.run(send_edition(store, edition_id, "daily", builder(edition_id, emails), transport,
                         now=clock, batch=5))
"""


# -- delivery over SMTP ---------------------------------------------------------------------


def test_every_recipient_gets_one_message_over_few_reused_connections(store, mail_server):
    edition_id, emails = queued_edition(store, 12)
    progress: list[tuple[int, int]] = []

    report = send(
        store,
        edition_id,
        emails,
        SmtpTransport(mail_server.relay(), connections=3),
        batch=4,
        on_progress=lambda done, total: progress.append((done, total)),
    )

    assert sorted(mail_server.handler.recipients()) == sorted(emails.values())
    assert 1 <= mail_server.handler.connections <= 3
    assert len({m.peer for m in mail_server.handler.messages}) <= 3
    assert (report.sent, report.deferred, report.failed, report.unknown) == (12, 0, 0, 0)
    assert report.counts == {"sent": 12} and report.stopped is None
    assert progress[-1] == (12, 12) and len(progress) == 12
    assert report.rate > 0


def test_the_server_receives_exactly_the_message_bytes(store, mail_server):
    edition_id, emails = queued_edition(store, 3)
    send(store, edition_id, emails, SmtpTransport(mail_server.relay(), connections=1))

    for received in mail_server.handler.messages:
        (recipient,) = received.rcpt_tos
        expected = message_for(edition_id, by_email(emails)[recipient], recipient)
        assert received.raw == expected.raw
        assert received.mail_from == "bounces@digest.example"


def test_a_second_run_delivers_nothing(store, mail_server):
    edition_id, emails = queued_edition(store, 5)
    transport = SmtpTransport(mail_server.relay(), connections=2)
    send(store, edition_id, emails, transport)

    again = send(store, edition_id, emails, transport)

    assert len(mail_server.handler.messages) == 5
    assert again.sent == again.done == 0 and again.counts == {"sent": 5}


def test_rcpt_4xx_is_deferred_and_5xx_failed_with_code_and_reply(store, mail_server):
    edition_id, emails = queued_edition(store, 4)
    later, never = emails[min(emails)], emails[max(emails)]
    mail_server.handler.rcpt_replies[later] = "450 4.2.1 Mailbox busy, try later"
    mail_server.handler.rcpt_replies[never] = "550 5.1.1 No such user"

    # batch=1: each claim could pick the deferred row again if the engine let it.
    report = send(
        store, edition_id, emails, SmtpTransport(mail_server.relay(), connections=1), batch=1
    )

    assert (report.sent, report.deferred, report.failed) == (2, 1, 1)
    rows = ledger(store, edition_id)
    assert rows[by_email(emails)[later]] == ("deferred", 450, "4.2.1 Mailbox busy, try later")
    assert rows[by_email(emails)[never]] == ("failed", 550, "5.1.1 No such user")
    assert mail_server.handler.rcpt_attempts[later] == 1  # not retried within the run
    assert sorted(mail_server.handler.recipients()) == sorted(set(emails.values()) - {later, never})

    # The next run retries the deferred row only; the relay now takes it.
    del mail_server.handler.rcpt_replies[later]
    retry = send(store, edition_id, emails, SmtpTransport(mail_server.relay(), connections=1))
    assert (retry.sent, retry.done) == (1, 1)
    assert mail_server.handler.recipients().count(later) == 1
    assert mail_server.handler.rcpt_attempts[never] == 1
    assert retry.counts == {"sent": 3, "failed": 1}


@pytest.mark.parametrize("exclusive", [True, False])
def test_the_engine_needs_nothing_of_the_store_but_its_protocol(store, mail_server, exclusive):
    edition_id, emails = queued_edition(store, 6)
    later, never = emails[min(emails)], emails[max(emails)]
    mail_server.handler.rcpt_replies[later] = "450 4.2.1 Mailbox busy, try later"
    mail_server.handler.rcpt_replies[never] = "550 5.1.1 No such user"  # suppressed after it
    narrowed = Narrowed(store, SendStore)

    report = send(
        narrowed,
        edition_id,
        emails,
        SmtpTransport(mail_server.relay(), connections=2),
        batch=2,
        exclusive=exclusive,
        retry=RetryPolicy(budget=0.5, backoff=0.05),
    )

    assert (report.sent, report.deferred, report.failed, report.suppressed) == (4, 1, 1, 1)
    assert report.retries >= 1 and store.suppression(never) is not None
    assert report.counts == {"sent": 4, "deferred": 1, "failed": 1}


def test_data_replies_are_classified_too(store, mail_server):
    edition_id, emails = queued_edition(store, 3)
    ids = sorted(emails)
    mail_server.handler.data_replies[emails[ids[0]]] = "452 4.3.1 Insufficient storage"
    mail_server.handler.data_replies[emails[ids[1]]] = "554 5.7.1 Message rejected"

    report = send(store, edition_id, emails, SmtpTransport(mail_server.relay(), connections=1))

    rows = ledger(store, edition_id)
    assert rows[ids[0]][:2] == ("deferred", 452)
    assert rows[ids[1]][:2] == ("failed", 554)
    assert (report.sent, report.deferred, report.failed) == (1, 1, 1)


def test_an_unsubscribe_after_enqueue_is_skipped_when_its_turn_comes(store, mail_server):
    edition_id, emails = queued_edition(store, 3)
    leaver = emails[sorted(emails)[1]]
    store.set_status(leaver, SubscriberStatus.unsubscribed, NOW)
    suppressed = emails[sorted(emails)[2]]
    store.suppress(suppressed, "hard bounce", NOW)

    report = send(store, edition_id, emails, SmtpTransport(mail_server.relay(), connections=1))

    assert mail_server.handler.recipients() == [emails[sorted(emails)[0]]]
    assert (report.sent, report.skipped) == (1, 2)
    assert report.counts == {"sent": 1, "skipped": 2}


def test_a_build_that_returns_none_skips_the_row(store, mail_server):
    edition_id, emails = queued_edition(store, 2)
    first = min(emails)

    def build(subscriber) -> OutgoingMessage | None:
        return (
            None
            if subscriber.id == first
            else message_for(edition_id, subscriber.id, subscriber.email)
        )

    report = asyncio.run(
        send_edition(
            store, edition_id, "daily", build, SmtpTransport(mail_server.relay()), now=clock
        )
    )
    assert report.counts == {"sent": 1, "skipped": 1}
    assert mail_server.handler.recipients() == [emails[max(emails)]]


# -- relay failures ---------------------------------------------------------------------------


def test_a_refused_connection_stops_the_run_and_loses_nothing(store, mail_server):
    edition_id, emails = queued_edition(store, 6)
    closed = SmtpRelay(
        host="127.0.0.1", port=free_port(), tls="none", username="digest", password=PASSWORD
    )

    report = send(store, edition_id, emails, SmtpTransport(closed, connections=2))

    assert report.stopped == f"SMTP relay 127.0.0.1:{closed.port} refused the connection"
    assert report.counts == {"queued": 6} and report.done == 0

    later = send(store, edition_id, emails, SmtpTransport(mail_server.relay(), connections=2))
    assert later.stopped is None and later.counts == {"sent": 6}
    assert sorted(mail_server.handler.recipients()) == sorted(emails.values())


def test_a_relay_lost_mid_run_puts_claimed_rows_back_in_the_queue(store, mail_server):
    edition_id, emails = queued_edition(store, 8)
    third = emails[sorted(emails)[2]]
    mail_server.handler.refuse_after_rcpt.add(third)  # hang up there, then refuse everyone

    report = send(store, edition_id, emails, SmtpTransport(mail_server.relay(), connections=1))

    assert report.stopped is not None and "127.0.0.1" in report.stopped
    assert report.sent == 2 and report.counts == {"sent": 2, "queued": 6}

    mail_server.handler.refusing = False
    mail_server.handler.refuse_after_rcpt.clear()
    resumed = send(store, edition_id, emails, SmtpTransport(mail_server.relay(), connections=2))
    assert resumed.counts == {"sent": 8}
    assert sorted(mail_server.handler.recipients()) == sorted(emails.values())  # each exactly once


def test_a_relay_taking_fewer_connections_than_configured_still_gets_everything(store, mail_server):
    edition_id, emails = queued_edition(store, 6)
    mail_server.handler.max_connections = 1

    report = send(store, edition_id, emails, SmtpTransport(mail_server.relay(), connections=3))

    assert report.stopped is None and report.counts == {"sent": 6}
    assert mail_server.handler.connections == 3  # two of them were turned away
    assert len({m.peer for m in mail_server.handler.messages}) == 1
    assert sorted(mail_server.handler.recipients()) == sorted(emails.values())


def test_a_connection_lost_before_data_is_retried_on_a_new_connection(store, mail_server):
    edition_id, emails = queued_edition(store, 3)
    mail_server.handler.drop_at_rcpt_once.add(emails[min(emails)])

    report = send(store, edition_id, emails, SmtpTransport(mail_server.relay(), connections=1))

    assert report.counts == {"sent": 3}
    assert mail_server.handler.connections == 2
    assert sorted(mail_server.handler.recipients()) == sorted(emails.values())


def test_a_drop_after_data_is_unknown_and_resent_only_on_request(store, mail_server):
    edition_id, emails = queued_edition(store, 3)
    dropped = emails[min(emails)]
    mail_server.handler.drop_after_data.add(dropped)
    transport = SmtpTransport(mail_server.relay(), connections=1)

    report = send(store, edition_id, emails, transport)
    assert (report.sent, report.unknown) == (2, 1)
    assert ledger(store, edition_id)[min(emails)][0] == "unknown"
    assert sorted(mail_server.handler.recipients()) == sorted(emails.values())  # it did arrive

    mail_server.handler.drop_after_data.clear()
    assert send(store, edition_id, emails, transport).done == 0
    assert mail_server.handler.recipients().count(dropped) == 1

    resent = send(store, edition_id, emails, transport, resend_unknown=True)
    assert (resent.sent, resent.done) == (1, 1) and resent.counts == {"sent": 3}
    assert mail_server.handler.recipients().count(dropped) == 2


def test_no_final_reply_within_the_data_timeout_is_unknown(store, mail_server):
    edition_id, emails = queued_edition(store, 2)
    mail_server.handler.hold_after(1)  # the relay takes every message and never answers
    try:
        report = send(
            store,
            edition_id,
            emails,
            SmtpTransport(mail_server.relay(), connections=1, data_timeout=0.3),
        )
    finally:
        mail_server.handler.release()

    assert report.unknown == 2 and report.counts == {"unknown": 2}
    assert {state for state, _, _ in ledger(store, edition_id).values()} == {"unknown"}
    # The timed-out connection is out of step with the relay: the next message used a new one.
    assert mail_server.handler.connections == 2 and len(mail_server.handler.messages) == 2


def test_an_unknown_row_is_not_resent_twice_in_one_run(store, mail_server):
    edition_id, emails = queued_edition(store, 3)
    dropped = emails[min(emails)]
    mail_server.handler.drop_after_data.add(dropped)

    report = send(
        store,
        edition_id,
        emails,
        SmtpTransport(mail_server.relay(), connections=1),
        resend_unknown=True,
        batch=1,
    )

    assert report.unknown == 1 and mail_server.handler.recipients().count(dropped) == 1
    assert report.counts == {"sent": 2, "unknown": 1}


def test_a_crashed_run_is_recovered_sending_resent_in_data_unknown(store, mail_server):
    edition_id, emails = queued_edition(store, 6)
    claimed = store.claim(edition_id, "daily", 4, NOW, "died")  # a run took four rows, died
    for row in claimed[2:]:
        store.mark_delivery(
            row.row_id, DeliveryState.in_data, NOW, message_id=f"<{row.subscriber_id}@x>"
        )
    in_data = {emails[row.subscriber_id] for row in claimed[2:]}

    report = send(store, edition_id, emails, SmtpTransport(mail_server.relay(), connections=2))

    assert (report.requeued_on_start, report.unknown_on_start) == (2, 2)
    assert report.counts == {"sent": 4, "unknown": 2}
    assert sorted(mail_server.handler.recipients()) == sorted(set(emails.values()) - in_data)


def test_a_sender_refused_by_the_relay_stops_the_run(store, mail_server):
    edition_id, emails = queued_edition(store, 3)
    mail_server.handler.mail_reply = "553 5.7.1 Sender address rejected"

    report = send(store, edition_id, emails, SmtpTransport(mail_server.relay(), connections=1))

    assert report.stopped is not None and "553" in report.stopped
    assert report.counts == {"queued": 3}


def test_killed_runs_never_send_twice_and_lose_nothing(store, mail_server, db_url):
    edition_id, emails = queued_edition(store, 40)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    for _ in range(3):
        # Kill the sender while the relay holds the final reply of the n-th message.
        kill_at = len(mail_server.handler.messages) + rng.randint(1, 8)
        mail_server.handler.hold_after(kill_at)
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, db_url, str(mail_server.port), str(edition_id)], cwd=ROOT
        )
        try:
            mail_server.handler.wait_for_messages(kill_at, timeout=60)
        finally:
            child.kill()
            child.wait()
            mail_server.handler.release()

    final = send(store, edition_id, emails, SmtpTransport(mail_server.relay(), connections=2))

    received = Counter(mail_server.handler.recipients())
    assert max(received.values()) == 1, f"a recipient got two copies (seed {seed})"
    unknown = {
        sid for sid, (state, _, _) in ledger(store, edition_id).items() if state == "unknown"
    }
    assert final.counts == {
        "sent": 40 - len(unknown),
        **({"unknown": len(unknown)} if unknown else {}),
    }
    assert final.unknown_on_start >= 1  # each kill left its held message in DATA
    sent = {e for sid, e in emails.items() if sid not in unknown}
    assert sent <= set(received), f"a row marked sent never arrived (seed {seed})"
    assert set(received) | {emails[sid] for sid in unknown} == set(emails.values())


# -- connecting: errors say where, never the password -----------------------------------------


def test_a_rejected_login_names_the_relay_but_never_the_password():
    def reject(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=False, handled=False)

    with (
        smtp_server(auth_require_tls=False, authenticator=reject) as running,
        pytest.raises(SendError) as caught,
    ):
        connect(SmtpTransport(running.relay(username="digest", password=PASSWORD), timeout=5))
    message = str(caught.value)
    assert f"{running.host}:{running.port}" in message and "535" in message
    assert PASSWORD not in message and PASSWORD not in repr(caught.value)


def test_a_refused_connection_error_never_shows_the_password():
    relay = SmtpRelay(
        host="127.0.0.1", port=free_port(), tls="implicit", username="digest", password=PASSWORD
    )
    with pytest.raises(SendError) as caught:
        connect(SmtpTransport(relay, timeout=5))
    assert "refused the connection" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_starttls_is_required_never_skipped(mail_server):
    # The test server offers no STARTTLS: a relay configured for it must not go on in plain text.
    with pytest.raises(SendError) as caught:
        connect(SmtpTransport(mail_server.relay(tls="starttls"), timeout=5))
    assert "STARTTLS" in str(caught.value)
    assert mail_server.handler.messages == []


# -- the Maildir outbox -----------------------------------------------------------------------


def test_the_outbox_is_a_maildir_any_client_opens(store, tmp_path):
    edition_id, emails = queued_edition(store, 4)
    outbox = tmp_path / "outbox"

    report = send(store, edition_id, emails, MaildirTransport(outbox))

    assert report.counts == {"sent": 4}
    assert len(list((outbox / "new").iterdir())) == 4
    assert list((outbox / "tmp").iterdir()) == [] and (outbox / "cur").is_dir()
    box = mailbox.Maildir(outbox, create=False)
    assert sorted(m["To"] for m in box) == sorted(emails.values())
    files = {p.read_bytes() for p in (outbox / "new").iterdir()}
    # The message's bytes, with LF line endings (a mail client shows a stored CR as ^M).
    assert files == {
        message_for(edition_id, sid, e).raw.replace(b"\r\n", b"\n") for sid, e in emails.items()
    }

    again = send(store, edition_id, emails, MaildirTransport(outbox))
    assert again.done == 0 and len(box) == 4


def test_the_outbox_replaces_a_repeated_message_instead_of_adding_one(tmp_path):
    message = message_for(1, 7, "reader@example.org")
    marks: list[str] = []

    async def deliver_twice():
        async with MaildirTransport(tmp_path / "outbox").session() as session:
            for _ in range(2):
                result = await session.deliver(message, before_data=lambda: marks.append("x"))
                assert result.state is DeliveryState.sent

    asyncio.run(deliver_twice())
    assert marks == ["x", "x"]
    assert len(mailbox.Maildir(tmp_path / "outbox", create=False)) == 1
