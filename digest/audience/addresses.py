"""Addresses and names: the one normal form of an address, the key it is matched by, and the
checks that keep names safe for a terminal and a header.

The **normal form** (what is stored, exported and mailed to) is the local part as given
(Unicode NFC, case kept) ``@`` the domain in IDNA A-labels, lower case: ``José@exämple.com``
becomes ``José@xn--exmple-cua.com``, which every relay can route. A non-ASCII local part
cannot be written in ASCII at all; such an address needs a relay that offers SMTPUTF8
(``needs_smtputf8``).

The **key** (what makes two spellings one subscriber, and what suppressions hash) lower-cases
the normal form with ``str.lower``, not ``str.casefold``: case folding maps ``ß`` to ``ss``
(and ligatures to their letters), which would make ``straße@`` and ``strasse@``, two
different mailboxes, one subscriber.

Pure: no I/O, no DNS.
"""

from __future__ import annotations

import contextlib
import functools
import re
import unicodedata

from email_validator import EmailNotValidError, validate_email

from digest.errors import SubscriberError

MAX_NAME = 200
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_LOCAL = re.compile(rf"{_ATOM}(\.{_ATOM})*")
# C0 and C1 controls, DEL, and the bidirectional embeddings, overrides and isolates, which
# can make a terminal line or a mail client's header read other than it is.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def normalize_email(address: str) -> str:
    """A valid address in normal form (see the module docstring); SubscriberError if invalid."""
    address = (address or "").strip()
    if not address:
        raise SubscriberError("the email address is empty")
    if any(ch in address for ch in "\r\n\t"):
        raise SubscriberError(f"{address!r} is not a valid email address: it holds a line break")
    # Fast path for the common plain-ASCII address: its local part needs no normalization
    # and its domain is checked (by email-validator, once per domain) from a cache. Anything
    # else takes the full validator.
    local, _, domain = address.rpartition("@")
    if len(local) <= 64 and len(address) <= 254 and _SIMPLE_LOCAL.fullmatch(local):
        normalized = _domain(domain)
        if normalized is not None:
            return f"{local}@{normalized}"
    try:
        valid = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise SubscriberError(
            f"{printable(address)!r} is not a valid email address: {exc}"
        ) from None
    return f"{valid.local_part}@{valid.ascii_domain}"


@functools.lru_cache(maxsize=4096)
def _domain(domain: str) -> str | None:
    """The A-label form of a valid domain, or None (the full validator then explains)."""
    try:
        return validate_email(f"a@{domain}", check_deliverability=False).ascii_domain
    except EmailNotValidError:
        return None


def email_key(address: str) -> str:
    """The form under which addresses are unique and suppressions are hashed.

    ``address`` should be in normal form; a Unicode domain is converted all the same, so a
    key never depends on how the domain was spelled.
    """
    address = address.strip()
    if address.isascii():  # the common case, and the same result as below
        return address.lower()
    local, _, domain = address.rpartition("@")
    if not domain.isascii():
        domain = _domain(domain) or domain
    return f"{unicodedata.normalize('NFC', local).lower()}@{domain.lower()}"


def legacy_key(address: str) -> str:
    """The key earlier versions stored (the case-folded address as given, a Unicode domain
    left as it was): erased addresses are only known by a hash of it."""
    local, _, domain = address.strip().rpartition("@")
    if domain.isascii() and "xn--" in domain.lower():
        with contextlib.suppress(UnicodeError):
            domain = domain.encode("ascii").decode("idna")
    return f"{local}@{domain}".casefold()


def needs_smtputf8(address: str) -> bool:
    """Whether mail to this (normal-form) address needs a relay that offers SMTPUTF8."""
    return not address.isascii()


SMTPUTF8_NOTE = (
    "its local part is not ASCII: mail to it needs a relay that offers SMTPUTF8 "
    "(sends to it fail on one that does not)"
)


def clean_name(name: str | None) -> str:
    """A display name: one line, no control or bidirectional formatting character, bounded."""
    name = (name or "").strip()
    if _UNSAFE.search(name):
        raise SubscriberError(
            f"name {printable(name)!r} holds a line break, control or "
            "bidirectional formatting character"
        )
    if len(name) > MAX_NAME:
        raise SubscriberError(f"name is longer than {MAX_NAME} characters")
    return name


def printable(text: str | None) -> str:
    """``text`` safe for a terminal line: control and bidirectional formatting characters
    shown as ``\\uXXXX`` escapes (for values stored before names were checked)."""
    if not text:
        return text or ""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
