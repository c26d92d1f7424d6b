"""The bytes on the wire: the composer never starts a line with a period (quoted-printable
writes it "=2E"), so its messages go out without SMTP's dot-stuffing scan, and the relay
still receives exactly ``message.raw``; any other message is dot-stuffed. Against a real
aiosmtpd server."""

from __future__ import annotations

import asyncio
import email
import email.policy
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest

from digest.compose import VIEW_URL, Recipient, make_environment, personalize, prepare
from digest.config import SmtpRelay
from digest.models import DeliveryResult, DeliveryState, OutgoingMessage
from digest.send import SmtpTransport
from tests.support.editions import BASE, make_edition, render_edition
from tests.support.sending import queued_edition, send
from tests.support.smtpd import smtp_server
from tests.support.values import NOW, SECRET_BYTES

SAFE = "dot_safe"


def no_line_starts_with_a_dot(raw: bytes) -> bool:
    return not raw.startswith(b".") and b"\n." not in raw


def composed(newsletter, text_tail: str = "") -> OutgoingMessage:
    lst = newsletter.get_list("daily")
    edition = make_edition(newsletter)
    rendered = render_edition(edition, newsletter, lst, make_environment())
    rendered = replace(rendered, text=rendered.text + text_tail)
    template = prepare(rendered, edition, newsletter=newsletter, lst=lst, base_url=BASE, date=NOW)
    return personalize(template, Recipient(3, "reader@example.org", "Reader"), secret=SECRET_BYTES)


def deliver_all(server, messages: list[OutgoingMessage]) -> None:
    transport = SmtpTransport(
        SmtpRelay(host=server.host, port=server.port, tls="none"), connections=1
    )

    async def go() -> None:
        async with transport.session() as session:
            for message in messages:
                result = await session.deliver(message, before_data=lambda: None)
                assert result.state.value == "sent", result

    asyncio.run(go())


def text_part(message: OutgoingMessage) -> str:
    parsed = email.message_from_bytes(message.raw, policy=email.policy.default)
    return parsed.get_body(("plain",)).get_content()


# A period opening a line of the text; one that a soft line break puts at a line's start
# (a sentence's full stop in column 74); one opening a line of the literal fast path.
DOTTED_TAILS = [
    "\n.a line of the text that starts with a dot\n",
    "\n.",
    "\n..\n",
    "\n" + "x" * 73 + ". And on.\n",
    "\n" + "y" * 73 + ".z" * 40 + "\n",
]


@pytest.mark.parametrize("tail", DOTTED_TAILS)
def test_no_line_of_a_composed_message_starts_with_a_dot(newsletter, tail):
    message = composed(newsletter, tail)
    assert getattr(message, SAFE) and no_line_starts_with_a_dot(message.raw)
    # The reader's text is unchanged: the period was only encoded.
    decoded = text_part(message).replace("\r\n", "\n")
    assert decoded.rstrip("\n").endswith(tail.rstrip("\n"))
    assert "=2E" in message.raw.decode("ascii")


def test_the_relay_receives_exactly_the_raw_bytes_either_way(newsletter):
    safe = composed(newsletter)
    # A message with lines starting with a dot (after the last boundary: its epilogue).
    dotted = replace(
        safe, raw=safe.raw + b".a line that starts with a dot\r\n..and two\r\n", dot_safe=False
    )
    assert getattr(safe, SAFE) and not no_line_starts_with_a_dot(dotted.raw)
    with smtp_server() as server:
        deliver_all(server, [safe, dotted])
        got = [m.raw for m in server.handler.messages]
    assert got == [safe.raw, dotted.raw]


def test_a_dkim_signature_keeps_a_message_dot_safe(newsletter):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from digest.send import DkimSigner

    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = DkimSigner(pem, domain="orbital-dispatch.example", selector="s1")
    signed = signer.sign_message(composed(newsletter))
    assert signed.raw.startswith(b"DKIM-Signature:")
    assert getattr(signed, SAFE) and no_line_starts_with_a_dot(signed.raw)
    unsafe = replace(composed(newsletter), dot_safe=False)
    assert not getattr(signer.sign_message(unsafe), SAFE)


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_messages_signed_by_their_constant_pieces_verify_as_the_relay_received_them(
    newsletter, monkeypatch, kind
):
    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    from digest.send import DkimSigner

    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ed25519.Ed25519PrivateKey.generate()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = DkimSigner(pem, domain="orbital-dispatch.example", selector="s1")
    record = signer.dns_record().encode()
    with monkeypatch.context() as patched:
        # Canonicalizing a whole body fails here: these are signed by the template's pieces.
        patched.setattr("digest.send.dkim.canonical_body", lambda body: pytest.fail("whole body"))
        signed = [
            signer.sign_message(composed(newsletter)),
            signer.sign_message(composed(newsletter, "\n.")),
        ]
    with smtp_server() as server:
        deliver_all(server, signed)
        got = [m.raw for m in server.handler.messages]
    assert got == [m.raw for m in signed]
    for raw in got:
        assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record)
    assert not dkim.verify(
        got[0].replace(b"Reader", b"Raider", 1), dnsfunc=lambda n, timeout=5: record
    )


# -- `in_data` is committed before the body -----------------------------------------------------


class _LedgerCheckingSession:
    """A transport session that, once ``before_data`` is done, reads the row's state through
    a connection of its own: what a crash at that instant would leave in the ledger."""

    def __init__(self, db_url: str, seen: list[str]):
        self._db_url, self._seen = db_url, seen

    async def deliver(self, message, *, before_data):
        marked = before_data()
        if marked is not None:
            await marked
        from sqlalchemy import create_engine, text

        engine = create_engine(self._db_url)
        with engine.connect() as conn:
            self._seen.append(
                conn.scalar(
                    text(
                        "SELECT state FROM deliveries WHERE edition_id = :e AND subscriber_id = :s"
                    ),
                    {"e": message.edition_id, "s": message.subscriber_id},
                )
            )
        engine.dispose()
        await asyncio.sleep(0)  # let the other sessions reach DATA meanwhile
        return DeliveryResult(message.subscriber_id, DeliveryState.sent, 250, "OK")


class _CheckingTransport:
    name = label = "checking"

    def __init__(self, db_url: str, concurrency: int):
        self.concurrency, self.seen = concurrency, []
        self._db_url = db_url

    @asynccontextmanager
    async def session(self):
        yield _LedgerCheckingSession(self._db_url, self.seen)


def test_every_body_waits_for_its_in_data_commit_even_when_sessions_share_one(store, db_url):

    edition_id, emails = queued_edition(store, 24)
    transport = _CheckingTransport(db_url, concurrency=6)
    report = send(store, edition_id, emails, transport, batch=8)
    assert report.sent == 24 and report.counts == {"sent": 24}
    assert transport.seen == ["in_data"] * 24


def test_a_failed_in_data_commit_means_the_body_is_never_written(newsletter):
    message = composed(newsletter)

    async def go(server) -> None:
        loop = asyncio.get_running_loop()
        transport = SmtpTransport(server.relay(), connections=1)

        def before_data():
            failed = loop.create_future()
            failed.set_exception(OSError("disk I/O error"))
            return failed

        async with transport.session() as session:
            try:
                await session.deliver(message, before_data=before_data)
            except OSError:
                return
        raise AssertionError("the failed commit did not stop the delivery")

    with smtp_server() as server:
        asyncio.run(go(server))
        server.handler.wait_until_idle()  # the server has read all the client ever wrote
        assert server.handler.messages == []


def test_a_template_given_the_secret_fills_the_edition_link_once_with_the_same_bytes(newsletter):
    lst = newsletter.get_list("daily")
    edition = make_edition(newsletter)
    rendered = render_edition(edition, newsletter, lst, make_environment())
    args = dict(newsletter=newsletter, lst=lst, base_url=BASE, date=NOW)
    per_recipient = prepare(rendered, edition, **args)
    once = prepare(rendered, edition, **args, secret=SECRET_BYTES)
    assert any(type(p) is tuple and p[0] == VIEW_URL for p in per_recipient.body)
    assert not any(type(p) is tuple and p[0] == VIEW_URL for p in once.body)
    for recipient in (Recipient(3, "reader@example.org", "Reader"), Recipient(4, "b@example.org")):
        expected = personalize(per_recipient, recipient, secret=SECRET_BYTES)
        got = personalize(once, recipient, secret=SECRET_BYTES)
        assert got.raw == expected.raw and got.dot_safe == expected.dot_safe
        # The first value that differs per recipient now comes later: a DKIM body hash
        # starts there.
        assert len(got.pieces.layout[0]) > len(expected.pieces.layout[0])
