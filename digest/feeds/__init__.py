"""Feeds in, articles out: fetch, parse, sanitize, identify, route, check.

- ``fetch`` (``fetch.py``): a feed's bytes over http(s) with a conditional GET, timeouts,
  bounded redirects, a size cap and retries, or from a local file.
- ``parse`` (``parse.py``): RSS/Atom bytes into ``Article`` values whose text is plain and
  whose URLs are absolute http(s); problems become warnings or one ``FeedError`` line.
- ``text.py`` and ``identity.py``: the cleaning and the article key, shared with the
  ``digest articles import`` reader (``jsonl.py``).
- ``routing.py``: which section an entry of a feed that covers several sections goes to.
- ``check.py``: what digest would take from one feed, without storing anything.

Nothing here touches the store; ``digest.ingest`` wires these to it.
"""

from __future__ import annotations

from digest.feeds.fetch import (
    ACCEPT,
    FetchPolicy,
    FetchResult,
    fetch,
    new_client,
    user_agent,
)
from digest.feeds.identity import article_key, canonical_url, http_url, strip_tracking
from digest.feeds.jsonl import read_jsonl
from digest.feeds.parse import OLDEST_PLAUSIBLE, SUMMARY_CHARS, ParsedFeed, parse
from digest.feeds.text import one_line, plain_text, shorten, split_dateline

MAX_REDIRECTS = FetchPolicy().max_redirects

__all__ = [
    "ACCEPT",
    "MAX_REDIRECTS",
    "OLDEST_PLAUSIBLE",
    "SUMMARY_CHARS",
    "FetchPolicy",
    "FetchResult",
    "ParsedFeed",
    "article_key",
    "canonical_url",
    "fetch",
    "http_url",
    "new_client",
    "one_line",
    "parse",
    "plain_text",
    "read_jsonl",
    "shorten",
    "split_dateline",
    "strip_tracking",
    "user_agent",
]
