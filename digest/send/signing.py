"""RSA signatures in a process of their own, so DKIM costs the sending loop little.

An RSA-2048 signature costs about 0.4 ms of CPU, as much as everything else the sending loop
does for a message, and the loop runs on one core. ``SigningPool`` keeps the cheap part in
the loop (the body hash, by the template's pieces, and the header data) and has a worker
process make the signatures, on another core. The requests of the messages built in one turn
of the event loop go together, over a pipe the event loop itself watches: no thread of this
process takes part, so the hand-over costs the loop a few microseconds a message. Each
message waits for its own signature before it is handed to the relay, so the bytes sent are
exactly the bytes signed, as when signing in place.

Ed25519 signatures cost less than the hand-over itself: they are made in place. A worker
process that dies (or cannot start) is not replaced: messages are signed in place from then
on, and the run goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections import deque
from multiprocessing.connection import Connection

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.models import OutgoingMessage
from digest.send.dkim import DkimSigner, sign_data

_Batch = list[tuple[bytes, asyncio.Future[bytes]]]


def _serve(conn: Connection, pem: bytes) -> None:
    """The worker process: sign each batch of data that comes, until told to stop."""
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey)
    try:
        while (items := conn.recv()) is not None:
            conn.send([sign_data(key, data) for data in items])
    except (EOFError, OSError):
        pass  # the sending process is gone


class SigningPool:
    """Signs messages with ``signer``: RSA in a worker process, Ed25519 in place.

    Use within one event loop; ``close`` stops the process."""

    def __init__(self, signer: DkimSigner):
        self.signer = signer
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        if signer.algorithm == "rsa-sha256":
            # spawn: a fork would copy the sending process's threads and connections.
            context = multiprocessing.get_context("spawn")
            ours, theirs = context.Pipe()
            self._process = context.Process(
                target=_serve, args=(theirs, signer.key_pem), name="digest-dkim", daemon=True
            )
            try:
                self._process.start()
            except OSError:
                self._process = None
                ours.close()
            else:
                self._conn = ours
            theirs.close()
        self._waiting: _Batch = []
        self._sent: deque[_Batch] = deque()  # batches the process has, oldest first

    @property
    def in_process(self) -> bool:
        """Whether signatures are made by the worker process (False: in place)."""
        return self._conn is not None

    async def sign_message(
        self, message: OutgoingMessage, *, timestamp: int | None = None
    ) -> OutgoingMessage:
        tags, data = self.signer.prepare(message.raw, timestamp=timestamp, pieces=message.pieces)
        if self._conn is None:
            return self.signer.signed(message, tags, self.signer.signature(data))
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bytes] = loop.create_future()
        self._waiting.append((data, waiter))
        if len(self._waiting) == 1:
            loop.call_soon(self._dispatch)
        return self.signer.signed(message, tags, await waiter)

    def _dispatch(self) -> None:
        batch, self._waiting = self._waiting, []
        if self._conn is None:  # the process died since these were queued
            self._sign_in_place(batch)
            return
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._conn.fileno(), self._receive)
        try:
            self._conn.send([data for data, _ in batch])
        except OSError:
            self._broken()
            self._sign_in_place(batch)
            return
        self._sent.append(batch)

    def _receive(self) -> None:
        """The process answered (or is gone): its oldest batch's signatures."""
        assert self._conn is not None
        try:
            signatures = self._conn.recv()
        except (EOFError, OSError):
            self._broken()
            return
        batch = self._sent.popleft()
        for (_, waiter), signature in zip(batch, signatures, strict=True):
            if not waiter.done():  # a session cancelled while it waited
                waiter.set_result(signature)

    def _sign_in_place(self, batch: _Batch) -> None:
        for data, waiter in batch:
            if not waiter.done():
                waiter.set_result(self.signer.signature(data))

    def _broken(self) -> None:
        """The process is gone: what it had is signed here, and so is everything after."""
        self._stop(wait=False)
        while self._sent:
            self._sign_in_place(self._sent.popleft())

    def _stop(self, *, wait: bool) -> None:
        conn, self._conn = self._conn, None
        process, self._process = self._process, None
        if conn is not None:
            if self._loop is not None:
                self._loop.remove_reader(conn.fileno())
            if wait:
                with contextlib.suppress(OSError):  # gone already
                    conn.send(None)
            conn.close()
        if process is not None:
            process.join(timeout=5 if wait else 0)
            if process.is_alive():
                process.kill()
                process.join()

    def close(self) -> None:
        """Stop the worker process (signing goes on in place)."""
        self._stop(wait=True)
        while self._sent:  # answers that never came: signed here
            self._sign_in_place(self._sent.popleft())
