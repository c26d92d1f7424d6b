"""Files and folders that hold personal data or tokens: owner-only from their first byte.

The SQLite database (and the WAL and shared-memory files SQLite creates beside it, which take
the database file's mode), the Maildir outbox, preview output, subscriber exports and ``.env``
hold addresses, names and live capability tokens. They are created 0600 and the folders digest
creates for them 0700, whatever the umask: the mode is given to ``open``/``mkdir`` (and
enforced with ``chmod``, which the umask does not touch), never fixed up after the content is
written. Files and folders that already exist keep the mode their owner gave them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """``path`` and its missing parents, created 0700; an existing folder is left as it is."""
    path = Path(path)
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process: its mode is its maker's
        os.chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a folder")
    return path


def create_private(path: Path) -> bool:
    """Create ``path`` empty and 0600 if it does not exist; whether it was created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True


def open_private(path: Path, mode: str = "w", **kwargs: Any) -> IO[Any]:
    """``open(path, mode)`` for writing, the file created 0600 when it is new (``mode`` is
    "w", "wb", "a" or "ab"; an existing file is truncated or appended to, mode unchanged)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    existed = os.path.exists(path)
    fd = os.open(path, flags, FILE_MODE)
    try:
        if not existed:
            os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def write_private(path: Path, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to ``path``, created 0600 when it is new."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with open_private(path, "wb") as file:
        file.write(raw)
