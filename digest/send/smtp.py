"""The SMTP transport: long-lived aiosmtplib connections that hand over the exact message bytes.

Each session owns one connection and reuses it for ``rotate_after`` messages (aiosmtplib
serializes the commands of a connection, so concurrency comes from several sessions). Every
message goes MAIL, RCPT, DATA, then the body, so the bytes on the wire are ``message.raw``
(only dot-stuffed) and the engine can commit ``in_data`` after the relay's 354 and right
before the body. When the relay offers PIPELINING (RFC 2920), MAIL, RCPT and DATA go in one
write and their replies are read in order, one round trip instead of three; the body still
waits for the 354. A ``RateLimiter`` spaces the messages of all sessions of a relay.

Outcomes are classified by phase and reply code, never by exception class:

- 4xx on MAIL, RCPT or DATA: ``deferred``; 5xx on RCPT or DATA: ``failed`` (pipelined, the
  first refused command of the group decides, as it would have step by step);
- 5xx on MAIL: the relay refuses the sender itself, so ``SendError`` stops the relay;
- 421, or the connection lost or timed out before the body was written: the message is tried
  again on a new connection, with backoff, then ``deferred``;
- lost or timed out while waiting for the final reply (``data_timeout``, RFC 5321's 10
  minutes by default): ``unknown``, since the relay may have the message;
- the relay cannot be reached, TLS or login fails: ``SendError`` with one line naming the
  relay (never the password).

TLS: ``smtps://`` is implicit TLS; ``smtp://`` requires STARTTLS (plain text only on
loopback). Certificates are verified against the system store or ``ca_file``. With
``tls_relaxed`` a relay that offers no STARTTLS is used in plain text (opportunistic TLS).
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, cast

import aiosmtplib
from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPConnectTimeoutError,
    SMTPException,
    SMTPHeloError,
    SMTPResponse,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import MAX_RESPONSE_LENGTH, SMTPProtocol

from digest.config import SmtpRelay
from digest.errors import SendError
from digest.models import DeliveryResult, DeliveryState, OutgoingMessage
from digest.send.pacing import RateLimiter

if TYPE_CHECKING:
    from digest.send.engine import BeforeData

_PLAIN_ADDRESS = re.compile(r"[\x21-\x3b\x3d\x3f-\x7e]+")  # printable ASCII, no < > or space
_CONNECTING = re.compile(r"^Error connecting to .+? on port \d+: ")  # we name the relay ourselves
# Failures of the connection itself: the server may be fine, the channel is not.
_DROPPED = (SMTPServerDisconnected, SMTPTimeoutError, ConnectionError, OSError)


class _Dropped(Exception):
    """The connection went away before the body was written: safe to retry elsewhere."""


class SmtpTransport:
    """Delivery through one SMTP relay over ``connections`` concurrent, reused connections."""

    name = "smtp"

    def __init__(
        self,
        relay: SmtpRelay,
        *,
        connections: int = 4,
        timeout: float = 60.0,
        data_timeout: float = 600.0,
        rotate_after: int = 0,
        limiter: RateLimiter | None = None,
        ca_file: Path | None = None,
        tls_relaxed: bool = False,
        reconnects: int = 3,
        backoff: float = 0.5,
    ):
        self.relay = relay
        self.label = relay.display  # names the relay in the ledger and in messages
        self.concurrency = max(1, connections)
        self.timeout = timeout
        # RFC 5321 4.5.3.2.6: wait up to 10 minutes for the reply to the final dot.
        self.data_timeout = data_timeout
        self.rotate_after = rotate_after  # messages per connection; 0: never rotate
        self.limiter = limiter or RateLimiter()
        self.ca_file = ca_file
        self.tls_relaxed = tls_relaxed
        self.reconnects, self.backoff = reconnects, backoff
        self._local_hostname: str | None = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[SmtpSession]:
        """One connection, kept for many messages; entering raises ``SendError`` if unusable."""
        session = SmtpSession(self, await self.connect())
        try:
            yield session
        finally:
            await session.close()

    def _scrub(self, text: str) -> str:
        password = self.relay.password.get_secret_value() if self.relay.password else ""
        text = " ".join(text.split())
        return text.replace(password, "***") if password else text

    def error(
        self, what: str, hint: str = "check DIGEST_SMTP_URL and that the relay is up"
    ) -> SendError:
        return SendError(self._scrub(f"SMTP relay {self.relay.display} {what}"), hint)

    async def connect(self) -> aiosmtplib.SMTP:
        """A connected, greeted, TLS-protected and logged-in client, or ``SendError``."""
        relay = self.relay
        smtp = aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            timeout=self.timeout,
            username=relay.username,
            password=relay.password.get_secret_value() if relay.password else None,
            use_tls=relay.tls == "implicit",
            start_tls=self._start_tls(),
            cert_bundle=str(self.ca_file) if self.ca_file else None,
            local_hostname=self._local_hostname,
        )
        try:
            await smtp.connect()
            # Greeted now, not lazily: messages go out as bare commands (see _envelope).
            if smtp.is_ehlo_or_helo_needed:
                await _hello(smtp)
        except BaseException as exc:
            smtp.close()
            if isinstance(exc, Exception):
                raise self._connect_error(exc) from None
            raise
        # Resolving our own name can be slow; do it once per transport, not per connection.
        self._local_hostname = smtp.local_hostname
        if smtp.supports_extension("pipelining") and smtp.protocol is not None:
            _read_every_reply(smtp.protocol)
        return smtp

    def _start_tls(self) -> bool | None:
        if self.relay.tls != "starttls":
            return False
        # True, not None: None quietly carries on in plain text when STARTTLS is not offered,
        # which only an explicit DIGEST_SMTP_TLS_RELAXED allows.
        return None if self.tls_relaxed else True

    def _connect_error(self, exc: Exception) -> SendError:
        cause = _root_cause(exc)
        if isinstance(exc, SMTPAuthenticationError):
            user = self.relay.username or ""
            return self.error(f"rejected the login of {user!r}: {exc.code} {exc.message}")
        if isinstance(exc, SMTPConnectTimeoutError):
            return self.error(f"did not answer within {self.timeout:g} s")
        if isinstance(cause, ConnectionRefusedError):
            return self.error("refused the connection")
        if isinstance(cause, socket.gaierror):
            return self.error(f"cannot be found: {cause.strerror or cause}")
        if isinstance(cause, ssl.SSLError):
            return self.error(f"failed the TLS handshake: {cause.reason or cause}")
        if isinstance(exc, SMTPResponseException):
            return self.error(f"refused the session: {exc.code} {exc.message}")
        if isinstance(exc, SMTPException):
            return self.error(f"cannot be used: {_CONNECTING.sub('', exc.message)}")
        return self.error(f"cannot be reached: {_reason(cause)}")


def _root_cause(exc: BaseException) -> BaseException:
    # aiosmtplib wraps socket and TLS errors in its own; the original says what happened.
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc


class SmtpSession:
    """One SMTP connection, reconnected when it goes away and rotated every N messages."""

    def __init__(self, transport: SmtpTransport, smtp: aiosmtplib.SMTP):
        self._transport = transport
        self._smtp: aiosmtplib.SMTP | None = smtp
        self._messages = 0  # on the current connection

    async def deliver(self, message: OutgoingMessage, *, before_data: BeforeData) -> DeliveryResult:
        transport = self._transport
        await transport.limiter.acquire()
        reason = ""
        for attempt in range(transport.reconnects + 1):
            if attempt:
                # Relays close idle or busy connections at any time, and a 421 means "later".
                await asyncio.sleep(transport.backoff * 2 ** (attempt - 1))
            smtp = await self._connected()
            try:
                return await self._transaction(smtp, message, before_data)
            except _Dropped as exc:
                self._drop()
                reason = str(exc)
        return _result(
            message,
            DeliveryState.deferred,
            None,
            f"connection lost before the message was sent: {reason}",
            "connect",
        )

    async def _connected(self) -> aiosmtplib.SMTP:
        rotate = self._transport.rotate_after
        if rotate and self._messages >= rotate:
            await self.close()  # a fresh connection: relays cap messages per connection
        if self._smtp is None or not self._smtp.is_connected:
            self._drop()
            self._smtp = await self._transport.connect()
            self._messages = 0
        return self._smtp

    async def _transaction(
        self, smtp: aiosmtplib.SMTP, message: OutgoingMessage, before_data: BeforeData
    ) -> DeliveryResult:
        self._messages += 1
        utf8 = not (message.recipient.isascii() and message.envelope_from.isascii())
        if utf8 and not smtp.supports_extension("smtputf8"):
            # A local part beyond ASCII cannot be written any other way (RFC 6531). A fault
            # of this address, not of the relay: no phase, so it counts no relay failure.
            return DeliveryResult(
                message.subscriber_id,
                DeliveryState.failed,
                reply=f"{message.recipient} needs SMTPUTF8, which the relay does not offer",
            )
        if smtp.supports_extension("pipelining"):
            reply, phase = await self._pipelined(smtp, message, utf8)
        else:
            reply, phase = await self._step_by_step(smtp, message, utf8)
        if reply.code != 354:
            return await self._refused(
                smtp, message, SMTPResponseException(reply.code, reply.message), phase
            )
        # The relay waits for the body: from here on it may end up with the message, so the
        # ledger says `in_data`, committed, before the first byte of it goes.
        try:
            marked = before_data()
            if marked is not None:
                await marked
        except BaseException:
            # The ledger could not say `in_data`: the body must not go. The relay waits in
            # DATA, where a QUIT would be read as the body: hang up instead.
            self._drop()
            raise
        return await self._body(smtp, message)

    async def _step_by_step(
        self, smtp: aiosmtplib.SMTP, message: OutgoingMessage, utf8: bool
    ) -> tuple[SMTPResponse, str]:
        """MAIL, RCPT and DATA, each after the reply to the one before: the reply that ended
        the envelope (354 if none refused it) and its phase."""
        phase = "mail"
        try:
            reply = await smtp.execute_command(
                _envelope(b"MAIL FROM:", message.envelope_from, utf8)
            )
            if reply.code == 250:
                phase = "rcpt"
                reply = await smtp.execute_command(_envelope(b"RCPT TO:", message.recipient, utf8))
                if reply.code in (250, 251):
                    phase = "data"
                    reply = await smtp.execute_command(b"DATA")
        except _DROPPED as exc:
            raise _Dropped(_reason(exc)) from None
        return reply, phase

    async def _pipelined(
        self, smtp: aiosmtplib.SMTP, message: OutgoingMessage, utf8: bool
    ) -> tuple[SMTPResponse, str]:
        """MAIL, RCPT and DATA in one write (RFC 2920), their replies read in order; the
        same answer as ``_step_by_step``: the first refusal decides, else DATA's 354."""
        group = (
            _envelope(b"MAIL FROM:", message.envelope_from, utf8)
            + b"\r\n"
            + _envelope(b"RCPT TO:", message.recipient, utf8)
            + b"\r\nDATA\r\n"
        )
        replies: list[SMTPResponse] = []
        protocol = smtp.protocol
        if protocol is None:
            raise _Dropped("Connection lost")
        try:
            protocol.write(group)
            for _ in range(3):
                replies.append(await protocol.read_response(timeout=self._transport.timeout))
        except _DROPPED as exc:
            # A refusal read before the connection went (a 421 and a hang-up) still decides.
            if _first_refusal(replies) is None:
                raise _Dropped(_reason(exc)) from None
            self._drop()
        refused = _first_refusal(replies)
        if refused is None:
            return replies[2], "data"
        if len(replies) == 3 and replies[2].code == 354:
            # The relay took DATA although the envelope was refused: an empty message ends
            # it, which a relay must not deliver to anybody (RFC 2920 3.1).
            try:
                await protocol.execute_command(b".", timeout=self._transport.timeout)
            except _DROPPED:
                self._drop()
        return refused

    async def _body(self, smtp: aiosmtplib.SMTP, message: OutgoingMessage) -> DeliveryResult:
        raw = message.raw if message.raw.endswith(b"\r\n") else message.raw + b"\r\n"
        protocol = smtp.protocol
        try:
            if protocol is None:
                raise SMTPServerDisconnected("Connection lost")
            # Written straight to the connection, not through data(): the final reply needs
            # its own long timeout, and only here does a lost connection mean "maybe sent".
            protocol.write((raw if message.dot_safe else _dot_stuffed(raw)) + b".\r\n")
            reply = await protocol.read_response(timeout=self._transport.data_timeout)
        except _DROPPED as exc:
            self._drop()
            return _result(
                message,
                DeliveryState.unknown,
                None,
                f"no reply after the message was sent: {_reason(exc)}",
                "body",
            )
        if reply.code == 250:
            return _result(message, DeliveryState.sent, reply.code, reply.message, "body")
        if reply.code == 421:
            self._drop()
        return _result(message, _classify(reply.code), reply.code, reply.message, "body")

    async def _refused(
        self,
        smtp: aiosmtplib.SMTP,
        message: OutgoingMessage,
        exc: SMTPResponseException,
        phase: str,
    ) -> DeliveryResult:
        if exc.code == 421:
            # The relay is closing this connection: try the message again on a new one.
            self._drop()
            raise _Dropped(f"{exc.code} {exc.message}")
        if exc.code >= 500 and phase == "mail":
            self._drop()
            raise self._transport.error(
                f"refused the sender {message.envelope_from}: {exc.code} {exc.message}",
                "check the list's sender address and what the relay allows it to send as",
            )
        await self._reset(smtp)
        return _result(message, _classify(exc.code), exc.code, exc.message, phase)

    async def _reset(self, smtp: aiosmtplib.SMTP) -> None:
        """Clear the server's envelope so the next message starts clean."""
        if not smtp.is_connected:
            self._drop()
            return
        try:
            await smtp.rset()
        except (SMTPException, *_DROPPED):
            self._drop()

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    async def close(self) -> None:
        if self._smtp is not None and self._smtp.is_connected:
            try:
                await self._smtp.quit(timeout=min(self._transport.timeout, 10.0))
            except (SMTPException, *_DROPPED):
                pass  # The session is over either way.
        self._drop()


async def _hello(smtp: aiosmtplib.SMTP) -> None:
    try:
        await smtp.ehlo()
    except SMTPHeloError:
        if not smtp.is_connected:
            raise
        await smtp.helo()  # an SMTP (not ESMTP) server


def _first_refusal(replies: list[SMTPResponse]) -> tuple[SMTPResponse, str] | None:
    """The first reply of a pipelined group that refused its command, with its phase."""
    for reply, phase, accepted in zip(
        replies, ("mail", "rcpt", "data"), ((250,), (250, 251), (354,)), strict=False
    ):
        if reply.code not in accepted:
            return reply, phase
    return None


def _envelope(verb: bytes, address: str, utf8: bool = False) -> bytes:
    """The MAIL FROM or RCPT TO command line for ``address`` (without its CRLF).

    A plain ASCII address goes straight into the command: aiosmtplib's ``quote_address``
    parses every address with ``email.utils`` first, a cost paid per message. With ``utf8``
    (the relay offers SMTPUTF8) the address goes as UTF-8, and MAIL FROM says SMTPUTF8.
    """
    if utf8:
        extra = b" SMTPUTF8" if verb == b"MAIL FROM:" else b""
        line = verb + b"<" + address.encode("utf-8") + b">" + extra
    elif _PLAIN_ADDRESS.fullmatch(address):
        line = verb + b"<" + address.encode("ascii") + b">"
    else:
        line = verb + quote_address(address).encode("ascii")
    # Written straight to the connection when pipelined: a line end in an address would
    # start a command of its own (aiosmtplib refuses it the same way).
    if b"\r" in line or b"\n" in line or b"\0" in line:
        raise ValueError("an envelope address contains a prohibited control character")
    return line


def _dot_stuffed(raw: bytes) -> bytes:
    # RFC 5321 4.5.2: a line starting with "." gets one more. The message has CRLF line
    # ends, so every line but the first follows a LF; bytes.replace runs at memory speed
    # where a multi-line regex walks the 50 KB body in Python's regex engine.
    stuffed = raw.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


def _read_every_reply(protocol: SMTPProtocol) -> None:
    """Make ``protocol`` keep every reply that arrives, for a pipelined group's reads.

    aiosmtplib's protocol parses one reply per arrival of data and then waits for more data
    before the next, which suits one command at a time; a relay that offers PIPELINING
    answers a group at once (RFC 2920 asks it to), several replies in one read."""
    protocol.__class__ = _EveryReply
    cast(_EveryReply, protocol)._replies = deque()


class _EveryReply(SMTPProtocol):
    """aiosmtplib's protocol with the replies that arrive together queued, in order.

    The oldest reply goes to the waiter that ``read_response`` awaits (``_handed``); the
    others wait in ``_replies`` and are read before anything that happens later, such as
    the connection closing (a 421 then a hang-up: the 421 is read)."""

    _replies: deque[SMTPResponse | Exception]
    _handed = False  # the waiter holds a reply older than those queued

    def data_received(self, data: bytes) -> None:
        waiter = self._response_waiter
        if waiter is None:
            return  # the connection is gone
        self._buffer.extend(data)
        try:
            if len(self._buffer) > MAX_RESPONSE_LENGTH:
                raise SMTPResponseException(500, "Response too long")
            while (parsed := self._read_response_from_buffer()) is not None:
                self._replies.append(parsed)
        except Exception as exc:
            self._buffer.clear()
            self._replies.append(exc)
        if self._replies and not waiter.done():
            self._handed = True
            oldest = self._replies.popleft()
            if isinstance(oldest, Exception):
                self._set_response_exception(waiter, oldest)
            else:
                waiter.set_result(oldest)

    async def read_response(self, timeout: float | None = None) -> SMTPResponse:
        if self._replies and not self._handed:
            reply = self._replies.popleft()
            if isinstance(reply, Exception):
                raise reply
            return reply
        try:
            return await super().read_response(timeout)
        finally:
            self._handed = False


def _classify(code: int) -> DeliveryState:
    # 5xx is permanent; 4xx and anything unexpected may succeed on a later run.
    return DeliveryState.failed if 500 <= code < 600 else DeliveryState.deferred


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _result(
    message: OutgoingMessage, state: DeliveryState, code: int | None, reply: str, phase: str
) -> DeliveryResult:
    return DeliveryResult(
        subscriber_id=message.subscriber_id,
        state=state,
        code=code,
        reply=" ".join(reply.split())[:500],
        extra={"phase": phase},
    )
