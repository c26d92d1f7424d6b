"""A real, in-process SMTP server for tests: records what it receives, injects faults on request.

``smtp_server()`` starts an aiosmtpd ``Controller`` (its own thread and event loop) on a free
loopback port and yields a ``RecordingServer``. Tell its ``handler`` what to do:

- ``rcpt_replies[address] = "450 4.2.0 Try later"``: answer RCPT for that address with it
  (a list of replies is used up one per attempt, then the address is accepted);
- ``data_replies[address] = "550 5.7.1 Rejected"``: answer the final dot with it (a list:
  one per attempt, as above);
- ``hangup_at_rcpt[address] = "421 4.3.2 Shutting down"``: answer RCPT with it and hang up
  (a list: one per attempt);
- ``data_delay = 0.2``: wait that long before answering the final dot (a slow relay);
- ``drop_after_data.add(address)``: record the message, then hang up without a reply;
- ``drop_at_rcpt_once.add(address)``: hang up at that RCPT, once (the next attempt succeeds);
- ``refuse_after_rcpt.add(address)``: hang up at that RCPT and on every later connection;
- ``mail_reply = "553 5.7.1 Sender refused"``: answer every MAIL FROM with it;
- ``max_connections = 1``: hang up at once on connections beyond that many open ones;
- ``hold_after(n)``: from the n-th message on, record each one but withhold the final reply
  until ``release()`` (the client is left waiting in DATA, as with a slow relay).

``rcpt_attempts`` counts the RCPT commands per address, accepted or not. With
``pipelining`` (``smtp_server(pipelining=True)``) the server offers PIPELINING (RFC 2920;
aiosmtpd reads pipelined commands but does not say so) and, as the RFC asks, holds its replies
while more of a group waits to be read, so they go out together; ``chunks`` holds what each
read from the socket returned, in order, to see which commands came in one write.
``data_after_refused_rcpt``: count a refused recipient all the same, so DATA gets its 354
(a relay that breaks RFC 2920's rule 3).

Each received message is a ``Received`` (mail_from, rcpt_tos, raw bytes as sent, peer).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from digest.config import SmtpRelay


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    peer: tuple


@dataclass
class RecordingHandler:
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: dict[str, str] = field(default_factory=dict)
    drop_after_data: set[str] = field(default_factory=set)
    drop_at_rcpt_once: set[str] = field(default_factory=set)
    refuse_after_rcpt: set[str] = field(default_factory=set)
    mail_reply: str | None = None
    refusing: bool = False  # hang up on every new connection at once
    max_connections: int | None = None
    hangup_at_rcpt: dict[str, str | list[str]] = field(default_factory=dict)
    data_delay: float = 0.0
    pipelining: bool = False
    data_after_refused_rcpt: bool = False

    def __post_init__(self) -> None:
        self._changed = threading.Condition()
        self._messages: list[Received] = []
        self._connections = 0
        self._open = 0
        self.rcpt_attempts: Counter[str] = Counter()
        self._hold_from: int | None = None
        self._released = threading.Event()
        self.received_at: list[float] = []  # time.monotonic() of each message, in order
        self.chunks: list[bytes] = []  # each read from a client's socket, in order

    def hold_after(self, count: int) -> None:
        self._released.clear()
        self._hold_from = count

    def release(self) -> None:
        self._hold_from = None
        self._released.set()

    # -- what the tests read --------------------------------------------------------------

    @property
    def messages(self) -> list[Received]:
        with self._changed:
            return list(self._messages)

    @property
    def connections(self) -> int:
        with self._changed:
            return self._connections

    def recipients(self) -> list[str]:
        return [r for m in self.messages for r in m.rcpt_tos]

    def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(f"{len(self._messages)} of {count} messages arrived")
            return list(self._messages)

    # -- aiosmtpd hooks -------------------------------------------------------------------

    def forget_connections(self) -> None:
        with self._changed:
            self._connections = 0

    def connection_opened(self) -> bool:
        """Count a new connection; False if it must be refused."""
        with self._changed:
            self._connections += 1
            self._changed.notify_all()
            if self.refusing or (
                self.max_connections is not None and self._open >= self.max_connections
            ):
                return False
            self._open += 1
            return True

    def connection_closed(self) -> None:
        with self._changed:
            self._open -= 1
            self._changed.notify_all()

    def wait_until_idle(self, timeout: float = 10.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self._open == 0, timeout):
                raise TimeoutError(f"{self._open} connections still open")

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    def received_chunk(self, data: bytes) -> None:
        with self._changed:
            self.chunks.append(data)

    def commands_read_together(self) -> list[list[bytes]]:
        """The SMTP commands of each chunk that held more than one, as the server read them
        (message bodies left out)."""
        with self._changed:
            chunks = list(self.chunks)
        grouped = []
        for chunk in chunks:
            lines = [line for line in chunk.split(b"\r\n") if line]
            if 1 < len(lines) <= 4:
                grouped.append(lines)
        return grouped

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.mail_reply is not None:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self._changed:
            self.rcpt_attempts[address] += 1
        if address in self.refuse_after_rcpt:
            self.refusing = True
        if address in self.drop_at_rcpt_once or address in self.refuse_after_rcpt:
            self.drop_at_rcpt_once.discard(address)
            server.transport.close()
            return "250 OK"  # never reaches the client: the connection is gone
        hangup = _next(self.hangup_at_rcpt, address)
        if hangup is not None:
            # The reply is written first; closing after this step flushes it, then hangs up.
            asyncio.get_running_loop().call_soon(server.transport.close)
            return hangup
        reply = _next(self.rcpt_replies, address)
        if reply is not None:
            if self.data_after_refused_rcpt:
                envelope.rcpt_tos.append(address)
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        for address in envelope.rcpt_tos:
            reply = _next(self.data_replies, address)
            if reply is not None:
                return reply
        received = Received(
            envelope.mail_from,
            tuple(envelope.rcpt_tos),
            envelope.original_content,
            tuple(session.peer),
        )
        with self._changed:
            self._messages.append(received)
            self.received_at.append(time.monotonic())
            self._changed.notify_all()
        if any(address in self.drop_after_data for address in envelope.rcpt_tos):
            server.transport.close()
        elif self._hold_from is not None and len(self.messages) >= self._hold_from:
            await asyncio.get_running_loop().run_in_executor(None, self._released.wait, 30)
        return "250 2.0.0 Message accepted"


def _next(replies: dict, address: str) -> str | None:
    """The reply configured for an address: a string every time, a list one per attempt."""
    reply = replies.get(address)
    if isinstance(reply, list):
        return reply.pop(0) if reply else None
    return reply


class _CountingSMTP(SMTP):
    _accepted = False
    _held = b""  # replies not written yet: more of a pipelined group is still to be read

    async def push(self, status) -> None:
        reply = status.encode("utf-8") if isinstance(status, str) else status
        self._held += reply + b"\r\n"
        if self.event_handler.pipelining and self._reader._buffer:
            return
        held, self._held = self._held, b""
        self._writer.write(held)
        await self._writer.drain()

    def connection_made(self, transport) -> None:
        first = self.transport is None  # STARTTLS calls this again on the same connection
        super().connection_made(transport)
        if first:
            self._accepted = self.event_handler.connection_opened()
            if not self._accepted:
                transport.close()

    def data_received(self, data: bytes) -> None:
        self.event_handler.received_chunk(data)
        super().data_received(data)

    def connection_lost(self, error) -> None:
        super().connection_lost(error)
        if self._accepted:
            self._accepted = False
            self.event_handler.connection_closed()


class _RecordingController(Controller):
    def factory(self):
        return _CountingSMTP(self.handler, **self.SMTP_kwargs)


@dataclass
class RecordingServer:
    host: str
    port: int
    handler: RecordingHandler

    def relay(self, **fields) -> SmtpRelay:
        values = {"host": self.host, "port": self.port, "tls": "none"} | fields
        return SmtpRelay(**values)


def free_port() -> int:
    """A loopback port nobody listens on right now (aiosmtpd's Controller refuses port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def smtp_server(*, pipelining: bool = False, **smtp_options) -> Iterator[RecordingServer]:
    """Run a recording SMTP server on loopback (offering PIPELINING with ``pipelining``);
    extra options go to aiosmtpd's ``SMTP``."""
    handler = RecordingHandler(pipelining=pipelining)
    deadline = time.monotonic() + 10
    while True:
        port = free_port()
        controller = _RecordingController(handler, hostname="127.0.0.1", port=port, **smtp_options)
        try:
            controller.start()
            break
        except OSError:
            # Another process took the port between the probe and the bind: pick another.
            if time.monotonic() > deadline:
                raise
    # start() opened a connection itself to check the server is up: let it go, forget it.
    handler.wait_until_idle()
    handler.forget_connections()
    try:
        yield RecordingServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


@dataclass(frozen=True)
class Tls:
    """A test certificate authority and a server certificate for 127.0.0.1 and localhost."""

    ca_file: Path
    server_context: ssl.SSLContext


def make_tls(folder: Path) -> Tls:
    """Generate a CA and a server certificate signed by it (the cryptography package)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def cert(subject: str, key, issuer_key, issuer_name, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(
                issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
            )
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("digest test CA", ca_key, ca_key, None, True)
    leaf = cert("127.0.0.1", key, ca_key, ca.subject, False)
    pem = serialization.Encoding.PEM
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(pem))
    cert_file.write_bytes(leaf.public_bytes(pem))
    key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return Tls(ca_file, context)
