"""Header lines built by hand: one line per value, folded where RFC 5322 allows, CRLF-ended.

No CR, LF or other control character from data reaches a header: every value passes
``one_line`` first. Text that is not plain ASCII (or that could be mistaken for an encoded
word) becomes RFC 2047 encoded words, split on character boundaries so each stays short.
"""

from __future__ import annotations

import base64
import re

from digest.errors import ComposeError

LINE = 78  # RFC 5322's "SHOULD" limit; 998 is the hard one
# C0 and C1 controls, line separators, and the bidirectional embeddings, overrides and
# isolates (which can make a header read other than it is).
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")
_ATEXT_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")
# RFC 6532: a local part may hold UTF-8 (letters beyond ASCII), for a relay with SMTPUTF8.
_UTF8_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\u00a0-\U0010ffff-]+@[A-Za-z0-9.-]+")
_WORD_BYTES = 42  # 56 base64 characters: "Subject: " plus one encoded word fits in 78


def one_line(value: str) -> str:
    """``value`` on one line: control characters become spaces, runs of space collapse."""
    return " ".join(_CONTROLS.sub(" ", value).split())


def needs_encoding(value: str) -> bool:
    return not value.isascii() or "=?" in value


def encoded_words(value: str) -> list[str]:
    """RFC 2047 base64 encoded words for ``value``, none splitting a character."""
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in value:
        width = len(char.encode("utf-8"))
        if size + width > _WORD_BYTES:
            words.append(_b_word("".join(chunk)))
            chunk, size = [], 0
        chunk.append(char)
        size += width
    if chunk:
        words.append(_b_word("".join(chunk)))
    return words


def _b_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


def fold(name: str, words: list[str]) -> str:
    """``name: words...`` as header line(s), breaking only between words, ending in CRLF."""
    line, lines = name + ":", []
    for word in words:
        # A line that holds only the folding space would be empty: never break there.
        if line and len(line) + 1 + len(word) > LINE:
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def text_header(name: str, value: str) -> str:
    """An unstructured header (Subject): ASCII folded at spaces, anything else encoded."""
    value = one_line(value)
    words = encoded_words(value) if needs_encoding(value) else value.split(" ")
    return fold(name, words)


def phrase_words(phrase: str) -> list[str]:
    """A display name as header words: bare atoms when safe, else encoded words."""
    phrase = one_line(phrase)
    if not phrase:
        return []
    if needs_encoding(phrase) or not _ATEXT_PHRASE.fullmatch(phrase):
        return encoded_words(phrase)
    return phrase.split(" ")


def checked_address(address: str) -> str:
    """``address`` if it is a mailbox that can go into a header, else ComposeError: ASCII,
    or a UTF-8 local part (RFC 6532, sent only through a relay offering SMTPUTF8) at an
    ASCII (IDNA) domain."""
    address = one_line(address).replace(" ", "")
    if not (_ADDRESS.fullmatch(address) or _UTF8_ADDRESS.fullmatch(address)):
        raise ComposeError(
            f"cannot address a message to {address[:80]!r}",
            "addresses must be mailboxes with their domain in IDNA (ASCII) form",
        )
    return address


def address_header(name: str, display: str, address: str) -> str:
    """``To: Name <address>`` (or a bare address when there is no name)."""
    address = checked_address(address)
    words = phrase_words(display)
    return fold(name, [*words, f"<{address}>"] if words else [address])
