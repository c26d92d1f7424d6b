"""Signed, opaque tokens for the links in a digest (unsubscribe, preferences, view in browser).

A token names one subscriber of one list and says what it may be used for (its *purpose*).
It is URL-safe base64 of::

    varint(subscriber_id) || list name (ASCII) || HMAC-SHA256(secret, purpose, id, list)[:12]

The list name travels inside the token so that ``read_token`` needs nothing but the secret;
list names are slugs (``[a-z0-9-]``, at most 64 characters). The MAC is truncated to 96 bits,
enough against forgery for links that do nothing worse than unsubscribe, and it binds the
purpose, so an unsubscribe token does not open the preferences page. With a list name of up
to 12 characters and ids below 2**35 a token is at most 40 characters; the longest possible
one (64-character list name, 63-bit id) is 114, still well within one header line.

The view-in-browser link is not personal: its token names an edition of a list only
(``edition_token``: subscriber 0, the edition's date bound into the purpose), so a forwarded
link carries nobody's identity and no capability.

Tokens do not expire: a digest's unsubscribe link must keep working for as long as the mail
sits in an inbox. Changing the secret revokes every token at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

MAC_BYTES = 12
MAX_SUBSCRIBER_ID = 2**63 - 1
MAX_TOKEN_CHARS = 120  # longer input is rejected before any decoding
_LIST_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


def make_token(secret: bytes, subscriber_id: int, list_name: str, purpose: str) -> str:
    """The token that lets its bearer act as ``subscriber_id`` of ``list_name`` for ``purpose``."""
    _check_secret(secret)
    if isinstance(subscriber_id, bool) or not 0 <= subscriber_id <= MAX_SUBSCRIBER_ID:
        raise ValueError("subscriber_id must be an integer from 0 to 2**63-1")
    if not _LIST_NAME.fullmatch(list_name):
        raise ValueError("list_name must be a slug such as 'daily'")
    if not purpose:
        raise ValueError("purpose must not be empty")
    payload = _varint(subscriber_id) + list_name.encode("ascii")
    raw = payload + _mac(secret, purpose, payload)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def read_token(secret: bytes, token: str, purpose: str) -> tuple[int, str] | None:
    """``(subscriber_id, list_name)`` if ``token`` was made with this secret for this purpose.

    Anything else (forged, truncated, padded, made for another purpose or with another
    secret) gives None, and says nothing about which check failed.
    """
    _check_secret(secret)
    raw = _decode(token)
    if raw is None or len(raw) <= MAC_BYTES:
        return None
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(secret, purpose, payload)):
        return None
    parsed = _read_varint(payload)
    if parsed is None:
        return None
    subscriber_id, rest = parsed
    try:
        list_name = rest.decode("ascii")
    except UnicodeDecodeError:
        return None
    if subscriber_id > MAX_SUBSCRIBER_ID or not _LIST_NAME.fullmatch(list_name):
        return None
    return subscriber_id, list_name


def edition_token(secret: bytes, list_name: str, edition_key: str) -> str:
    """The token of the shared view-in-browser link of one edition of a list."""
    return make_token(secret, 0, list_name, f"edition:{edition_key}")


def read_edition_token(secret: bytes, token: str, edition_key: str) -> str | None:
    """The list name if ``token`` is ``edition_token`` of that edition, else None."""
    found = read_token(secret, token, f"edition:{edition_key}")
    return found[1] if found is not None and found[0] == 0 else None


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or not secret:
        raise ValueError("the secret key must be non-empty bytes")


def _mac(secret: bytes, purpose: str, payload: bytes) -> bytes:
    # A fixed label and a length prefix keep these MACs apart from any other use of the key.
    message = b"digest-token\x00" + _varint(len(purpose.encode())) + purpose.encode() + payload
    return hmac.new(secret, message, hashlib.sha256).digest()[:MAC_BYTES]


def _decode(token: str) -> bytes | None:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not _TOKEN.fullmatch(token):
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:
        return None
    # Base64 tolerates stray bits in the last character; accept only the one spelling we emit.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        return None
    return raw


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes) -> tuple[int, bytes] | None:
    value = 0
    for index, byte in enumerate(data[:10]):
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            # A zero final byte after others is a second spelling of a shorter number.
            if index and byte == 0:
                return None
            return value, data[index + 1 :]
    return None
