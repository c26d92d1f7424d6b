"""The exit codes of every `digest` command, each with its meaning: the one table.

The CLI exits with these (an error's code is its class's ``exit_code``, see ``digest.errors``),
the commands' ``--help`` is written from it, and the README's table of exit codes says the
same, word for word (a test compares the two).

A command that covers several lists (``digest send``, ``check``, ``preview`` without
``--list``) exits with the most serious of the lists' codes, by ``SEVERITY``.
"""

from __future__ import annotations

import inspect
from enum import IntEnum


class ExitCode(IntEnum):
    meaning: str

    def __new__(cls, value: int, meaning: str) -> ExitCode:
        code = int.__new__(cls, value)
        code._value_ = value
        code.meaning = meaning
        return code

    OK = (
        0,
        "success: `digest send` delivered every due message or had nothing to do (no new "
        "articles: the edition is skipped); `digest check` found no errors",
    )
    ERROR = 1, "any other error"
    CONFIG = 2, "invalid configuration, or a command line that does not parse"
    STORE = 3, "the store cannot be opened or migrated"
    FEED = 4, "`digest feeds check`: the feed is unusable; `digest fetch`: every feed failed"
    IMPORT = 5, "an import rejected some rows (the good rows are stored)"
    SUBSCRIBER = 6, "an address is invalid, unknown or already present"
    SELECTION = (
        7,
        "no edition can be built or changed (unknown list, no articles, an edition frozen "
        "since its sending started, ...)",
    )
    COMPOSE = (
        8,
        "the message cannot be composed (a template missing or failing, the edition over its "
        "size budget)",
    )
    SEND = (
        9,
        "a single message (a confirmation mail) could not be handed to the relay or the outbox",
    )
    INCOMPLETE = 10, "some messages deferred (4xx) or of unknown outcome: run again later"
    FAILED = 11, "some recipients failed permanently (5xx)"
    STOPPED = (
        12,
        "the relay could not be used (refused, TLS, authentication, too many failures): the "
        "run stopped, the next resumes",
    )
    CHECK = 13, "`digest check` found errors in the composed message: nothing was sent"
    LOCKED = 14, "another run is sending this list (SQLite; on PostgreSQL runs cooperate)"
    INTERRUPTED = 130, "interrupted (Ctrl-C): the next run resumes where this one stopped"


# From least to most serious. A list left for the next run (locked, deferred) is less serious
# than readers lost (failed), a stopped run, or a list that sent nothing because its message
# failed (check, compose, selection); a configuration or store fault stops every list; an
# unexpected error and an interruption say the whole run cannot be trusted.
SEVERITY: tuple[ExitCode, ...] = (
    ExitCode.OK,
    ExitCode.LOCKED,
    ExitCode.INCOMPLETE,
    ExitCode.FAILED,
    ExitCode.STOPPED,
    ExitCode.SEND,
    ExitCode.CHECK,
    ExitCode.COMPOSE,
    ExitCode.SELECTION,
    ExitCode.SUBSCRIBER,
    ExitCode.IMPORT,
    ExitCode.FEED,
    ExitCode.STORE,
    ExitCode.CONFIG,
    ExitCode.ERROR,
    ExitCode.INTERRUPTED,
)


def most_serious(codes: list[int]) -> int:
    """The most serious of ``codes`` by ``SEVERITY`` (0, OK, for none)."""
    rank = {int(code): place for place, code in enumerate(SEVERITY)}
    return max(codes, key=rank.__getitem__, default=int(ExitCode.OK))


def describe(*codes: ExitCode) -> str:
    """One sentence listing ``codes`` and their meanings, for a command's ``--help``."""
    return "Exit codes: " + "; ".join(f"{int(c)} {c.meaning.replace('`', '')}" for c in codes) + "."


def command_help(text: str, *codes: ExitCode) -> str:
    """A command's ``--help``: its (docstring-style) text, then ``codes`` described."""
    return f"{inspect.cleandoc(text)}\n\n{describe(*codes)}"
