"""Keeping the links' tokens out of every log: uvicorn's access and error logs and our own.

A token in a URL is a capability (whoever has it may unsubscribe a reader or open their
preferences), so the path of ``/u/``, ``/p/``, ``/c/`` and ``/e/<edition>/`` links is logged
with its token replaced by ``***``. A publisher's sign-up form opens ``/subscribe`` with the
reader's address (and name) in the query: those values are logged as ``***`` too.
"""

from __future__ import annotations

import copy
import logging
import re

_TOKEN_PATH = re.compile(r"(/(?:[upc]|e/[^/\s\"'?#]+)/)[^/\s\"'?#]+")
_PERSONAL_QUERY = re.compile(r"([?&;](?:email|name)=)[^&;#\s\"']*", re.IGNORECASE)
REDACTED = "***"


def redact(text: str) -> str:
    """``text`` with every token of a link path, and every address or name in a query,
    replaced."""
    return _PERSONAL_QUERY.sub(rf"\g<1>{REDACTED}", _TOKEN_PATH.sub(rf"\g<1>{REDACTED}", text))


class RedactTokens(logging.Filter):
    """A log filter that redacts tokens in a record's message and in its arguments (uvicorn's
    access log passes the path as an argument, and its formatter unpacks them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def uvicorn_log_config() -> dict:
    """uvicorn's own logging configuration, with every handler redacting tokens."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": RedactTokens}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact")
    return config


def redact_logger(name: str) -> logging.Logger:
    """The logger ``name``, redacting tokens in whatever is logged through it."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
    return logger
