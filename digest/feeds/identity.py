"""Links and identity: absolute http(s) URLs safe for an email, and each article's key.

An article's key is its GUID, else its canonical link (tracking parameters, fragment and
default port removed, scheme and host lower-cased), else a hash of its title and summary.
The key never depends on where the feed was fetched from, so a feed that moves keeps its
articles, and a correction to an entry updates the stored article instead of adding one.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from digest.feeds.text import one_line

_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"


def http_url(value: str | None, base: str | None = None) -> str | None:
    """An absolute http(s) URL, percent-encoding what may not appear raw; None otherwise."""
    value = one_line(value or "")
    if not value:
        return None
    try:
        url = urljoin(base, value) if base else value
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return None
        if not parts.netloc.isascii():
            # Percent-encoding would break an international host name; IDNA is its ASCII form.
            port = f":{parts.port}" if parts.port else ""
            url = urlunsplit(parts._replace(netloc=parts.hostname.encode("idna").decode() + port))
    except (UnicodeError, ValueError):
        return None
    return quote(url, safe=_URL_SAFE)


_TRACKING = re.compile(
    r"^(?:utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|yclid|mc_cid|"
    r"mc_eid|_hsenc|_hsmi|mkt_tok|igshid|ns_(?:mchannel|campaign|source|"
    r"linkname|fee))$",
    re.I,
)


def canonical_url(link: str) -> str:
    """``link`` without tracking parameters or fragment, scheme and host lower-cased."""
    parts = urlsplit(link.strip())
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port and (parts.scheme.lower(), port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    # Filtered textually so that the parameters kept keep their exact spelling and order.
    query = "&".join(
        p for p in parts.query.split("&") if p and not _TRACKING.match(p.split("=", 1)[0])
    )
    return urlunsplit((parts.scheme.lower(), host, parts.path or "/", query, ""))


def strip_tracking(url: str) -> str:
    """``url`` as a reader should get it: the tracking parameters removed, the rest kept."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = "&".join(
        p for p in parts.query.split("&") if p and not _TRACKING.match(p.split("=", 1)[0])
    )
    return urlunsplit(parts._replace(query=query))


def article_key(guid: str | None, link: str | None, title: str, summary: str) -> str:
    """The article's identity: its GUID, else its canonical link, else a content hash."""
    guid = one_line(guid or "")
    if guid:
        return f"guid:{guid}"
    if link and link.strip():
        return f"url:{canonical_url(link)}"
    digest = hashlib.sha256(f"{one_line(title)}\n{one_line(summary)}".encode()).hexdigest()
    return f"sha256:{digest}"
