"""One run per list at a time: an exclusive OS-level lock held for the whole send.

``run_lock`` takes ``flock`` on a lock file (beside the SQLite database by default, see
``DIGEST_RUN_DIR``). The kernel releases it when the process ends, however it ends, so a
killed run never leaves a stale lock behind. The file keeps the holder's pid and start time,
only to tell a second run who holds the list. The file is never deleted: removing a lock
file that another process is about to lock would let two runs in.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from digest.errors import DigestError
from digest.exits import ExitCode


class RunLocked(DigestError):
    """Another run is sending this list right now; this one sent nothing."""

    exit_code = ExitCode.LOCKED  # as `digest send` exits when another run holds the list


@contextmanager
def run_lock(path: Path, what: str) -> Iterator[None]:
    """Hold the lock at ``path`` for the duration of the block, or raise ``RunLocked``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DigestError(
            f"cannot create the lock file {path}: {exc.strerror or exc}",
            "check DIGEST_RUN_DIR and that the folder is writable",
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
            who = f" (pid {holder[0]}, since {holder[1]})" if len(holder) >= 2 else ""
            raise RunLocked(
                f"{what} is being sent by another run{who}; this run sent nothing",
                "let that run finish; the next one resumes where it stops",
            ) from None
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {stamp}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_file(run_dir: Path | None, database_url: str, list_name: str) -> Path:
    """Where a list's run lock lives: ``run_dir``, else beside the SQLite database (one lock
    per database and list), else the working folder."""
    name = f"digest-send-{list_name}.lock"
    if run_dir is not None:
        return run_dir / name
    if database_url.startswith("sqlite:///") and ":memory:" not in database_url:
        database = Path(database_url.removeprefix("sqlite:///").split("?", 1)[0])
        return database.with_name(f"{database.name}.send-{list_name}.lock")
    return Path(name)


def lock_holder(path: Path) -> str | None:
    """Who holds the lock ("pid N since T"), or None; never takes the lock itself, so asking
    cannot turn a starting run away."""
    try:
        holder = path.read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError):
        return None
    if len(holder) < 2 or not holder[0].isdigit():
        return None
    try:
        os.kill(int(holder[0]), 0)  # a killed holder leaves its line behind: is it alive?
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, under another user
    return f"pid {holder[0]} since {holder[1]}"
