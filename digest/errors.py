"""The one exception tree of digest.

Every error a user can meet says what went wrong, where, and what to do about it, in one line
(its ``str``). The CLI prints that line and exits with the error's ``exit_code`` (the table
of ``digest.exits``); tracebacks are only shown with ``--verbose``.

    DigestError
    ├── ConfigError          a setting or the newsletter definition is invalid
    ├── StoreError           the database cannot be opened or migrated
    ├── FeedError            one feed cannot be fetched or parsed (others go on)
    ├── RowsRejected         rows of an import file were rejected (good rows are kept)
    ├── SubscriberError      an address is invalid, unknown or already present
    ├── SelectionError       no edition can be built (unknown list, ...)
    │   └── EditionFrozen    a frozen edition (sending started) was asked to change
    ├── ComposeError         a template is missing or fails to render
    └── SendError            the relay cannot be used at all (refused, auth, TLS)
"""

from __future__ import annotations

from digest.exits import ExitCode


class DigestError(Exception):
    """Base of every error digest raises on purpose."""

    exit_code = ExitCode.ERROR

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message} ({hint})")


class ConfigError(DigestError):
    exit_code = ExitCode.CONFIG


class StoreError(DigestError):
    exit_code = ExitCode.STORE


class FeedError(DigestError):
    exit_code = ExitCode.FEED


class RowsRejected(DigestError):
    """Raised after an import when some rows were rejected; carries the rejects."""

    exit_code = ExitCode.IMPORT

    def __init__(self, message: str, rejects: list | None = None, hint: str | None = None):
        super().__init__(message, hint)
        self.rejects = rejects or []


class SubscriberError(DigestError):
    exit_code = ExitCode.SUBSCRIBER


class SelectionError(DigestError):
    exit_code = ExitCode.SELECTION


class EditionFrozen(SelectionError):
    """An edition whose sending started was asked to change: it never does."""


class ComposeError(DigestError):
    exit_code = ExitCode.COMPOSE


class SendError(DigestError):
    exit_code = ExitCode.SEND
