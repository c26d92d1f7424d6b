"""RSA signatures in a process of their own, so DKIM costs the sending loop little.

An RSA-2048 signature costs about half a millisecond of CPU, as much as everything else the
sending loop does for a message, and the loop runs on one core. ``SigningPool`` keeps the
cheap part in the loop (the body hash, by the template's pieces, and the header data) and
has a worker process make the signatures, on another core: the requests of the messages
built in one turn of the event loop go together, so handing them over costs a fraction of
signing them. Each message waits for its own signature before it is handed to the relay,
so the bytes sent are exactly the bytes signed, as when signing in place.

Ed25519 signatures cost less than the hand-over itself: they are made in place. A worker
process that dies (or cannot start) is not replaced: messages are signed in place from then
on, and the run goes on.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.models import OutgoingMessage
from digest.send.dkim import DkimSigner, sign_data

_key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | None = None  # the worker process's


def _load(pem: bytes) -> None:
    global _key
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey)
    _key = key


def _sign_all(items: list[bytes]) -> list[bytes]:
    assert _key is not None
    return [sign_data(_key, data) for data in items]


class SigningPool:
    """Signs messages with ``signer``: RSA in a worker process, Ed25519 in place.

    Use within one event loop; ``close`` stops the process."""

    def __init__(self, signer: DkimSigner):
        self.signer = signer
        self._pool: ProcessPoolExecutor | None = None
        if signer.algorithm == "rsa-sha256":
            self._pool = ProcessPoolExecutor(
                1,
                # spawn: a fork would copy the sending process's threads and connections.
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_load,
                initargs=(signer.key_pem,),
            )
        self._waiting: list[tuple[bytes, asyncio.Future[bytes]]] = []

    @property
    def in_process(self) -> bool:
        """Whether signatures are made by the worker process (False: in place)."""
        return self._pool is not None

    async def sign_message(
        self, message: OutgoingMessage, *, timestamp: int | None = None
    ) -> OutgoingMessage:
        tags, data = self.signer.prepare(message.raw, timestamp=timestamp, pieces=message.pieces)
        if self._pool is None:
            return self.signer.signed(message, tags, self.signer.signature(data))
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bytes] = loop.create_future()
        self._waiting.append((data, waiter))
        if len(self._waiting) == 1:
            loop.call_soon(self._dispatch)
        return self.signer.signed(message, tags, await waiter)

    def _dispatch(self) -> None:
        batch, self._waiting = self._waiting, []
        if self._pool is None:  # the process died since these were queued
            self._sign_in_place(batch)
            return
        try:
            done = self._pool.submit(_sign_all, [data for data, _ in batch])
        except (BrokenExecutor, RuntimeError):
            self._broken()
            self._sign_in_place(batch)
            return
        loop = asyncio.get_running_loop()
        done.add_done_callback(lambda f: loop.call_soon_threadsafe(self._deliver, batch, f))

    def _deliver(self, batch: list[tuple[bytes, asyncio.Future[bytes]]], done: Future) -> None:
        try:
            signatures = done.result()
        except BrokenExecutor:
            self._broken()
            self._sign_in_place(batch)
            return
        except BaseException as exc:
            for _, waiter in batch:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        for (_, waiter), signature in zip(batch, signatures, strict=True):
            if not waiter.done():  # a session cancelled while it waited
                waiter.set_result(signature)

    def _sign_in_place(self, batch: list[tuple[bytes, asyncio.Future[bytes]]]) -> None:
        for data, waiter in batch:
            if not waiter.done():
                waiter.set_result(self.signer.signature(data))

    def _broken(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the worker process (signing goes on in place)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
