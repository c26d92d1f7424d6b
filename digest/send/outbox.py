"""The Maildir outbox: the embedded default transport when no SMTP relay is configured.

Each message becomes one file in a Maildir (``tmp/``, ``new/``, ``cur/``), so any mail
client, or ``mailbox.Maildir``, opens the outbox. A message is stored with LF line endings, as
a local delivery agent stores it (CRLF is SMTP's wire form; mutt shows a stored CR as ``^M``);
otherwise its bytes are those the SMTP path sends, and a DKIM signature still verifies, the
canonical forms being defined over lines, not over their line-ending bytes. Files are written
the Maildir way: into ``tmp/``, flushed to disk, then renamed into ``new/``, so a reader never
sees half a message. The file name is derived from the Message-ID: sending the same message again
replaces its file (or is a no-op once a client has moved it to ``cur/``) instead of adding
a copy.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from digest.errors import SendError
from digest.files import open_private, private_dir
from digest.models import DeliveryResult, DeliveryState, OutgoingMessage

if TYPE_CHECKING:
    from digest.send.engine import BeforeData


def maildir_key(message_id: str) -> str:
    """The Maildir file name of a message: stable per Message-ID, safe on any file system."""
    digest = hashlib.sha256(message_id.strip().encode("utf-8")).hexdigest()[:40]
    return f"digest-{digest}"


class MaildirTransport:
    """Delivery into the Maildir at ``path`` (created if missing)."""

    name = "maildir"
    concurrency = 1  # one writer: ordering in the outbox follows the ledger

    def __init__(self, path: Path):
        self.path = Path(path)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[MaildirSession]:
        try:
            for sub in ("tmp", "new", "cur"):
                private_dir(self.path / sub)  # messages carry addresses and live tokens
            # A client moves read messages to cur/ as "<key>:2,<flags>"; those count as there.
            seen = {name.split(":", 1)[0] for name in os.listdir(self.path / "cur")}
        except OSError as exc:
            raise SendError(
                f"cannot write the outbox {self.path}: {exc.strerror or exc}",
                "check DIGEST_OUTBOX and that the folder is writable",
            ) from None
        yield MaildirSession(self.path, seen)


class MaildirSession:
    def __init__(self, path: Path, read_keys: set[str]):
        self._path = path
        self._read_keys = read_keys

    async def deliver(self, message: OutgoingMessage, *, before_data: BeforeData) -> DeliveryResult:
        key = maildir_key(message.message_id)
        marked = before_data()
        if marked is not None:
            await marked
        if key not in self._read_keys:
            try:
                # fsync blocks; keep the event loop (and other tasks) running meanwhile.
                await asyncio.to_thread(_write, self._path, key, stored_form(message.raw))
            except OSError as exc:
                raise SendError(
                    f"cannot write the outbox {self._path}: {exc.strerror or exc}"
                ) from None
        return DeliveryResult(
            subscriber_id=message.subscriber_id,
            state=DeliveryState.sent,
            reply=f"written to {self._path / 'new' / key}",
        )


def stored_form(raw: bytes) -> bytes:
    """A message as a Maildir file holds it: CRLF line endings (the wire form) turned to LF."""
    return raw.replace(b"\r\n", b"\n")


def _write(path: Path, key: str, raw: bytes) -> None:
    tmp = path / "tmp" / key
    with open_private(tmp, "wb") as file:
        file.write(raw)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path / "new" / key)
    _fsync_dir(path / "new")


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable before the ledger says `sent`.
    flags = getattr(os, "O_DIRECTORY", None)
    if flags is None:
        return  # not available on this platform (e.g. Windows); the rename is still atomic
    fd = os.open(directory, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
