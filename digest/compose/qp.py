"""Quoted-printable (RFC 2045) for bodies encoded in pieces.

A body is encoded once, cut at its placeholders; each piece that does not end a line ends in
a soft line break, so a recipient's value, encoded the same way, can be put between two
pieces without any line growing past 76 characters. Decoded, the pieces join back into the
original text.

No encoded line starts with ".": a period opening a line is written "=2E" (RFC 2049's
advice), so the message needs no dot-stuffing when it is sent (RFC 5321 4.5.2), and its
bytes go to the relay as they are.
"""

from __future__ import annotations

import re

MAX_LINE = 76
# Leave room for a trailing space becoming "=20" and for the soft break's "=".
_FILL = MAX_LINE - 3

_TOKENS = [f"={byte:02X}" for byte in range(256)]
for _byte in range(33, 127):
    if _byte != ord("="):
        _TOKENS[_byte] = chr(_byte)
_TOKENS[ord(" ")] = " "
_TOKENS[ord("\t")] = "\t"
_AT_LINE_END = {" ": "=20", "\t": "=09"}
_LEADING_PERIOD = f"={ord('.'):02X}"
_LITERAL = re.compile(r"[\x21-\x3c\x3e-\x7e]*")  # printable ASCII but "=": kept as is


def encode(text: str, *, soft_end: bool) -> bytes:
    """``text`` (LF line ends) as quoted-printable with CRLF line ends.

    With ``soft_end`` an unfinished last line gets a soft line break, ready for whatever
    piece comes next.
    """
    lines = text.split("\n")
    out = []
    for index, line in enumerate(lines):
        last = index == len(lines) - 1
        if last and not line:
            break
        out.append(_encode_line(line))
        if not last:
            out.append("\r\n")
        elif soft_end:
            out.append("=\r\n")
    return "".join(out).encode("ascii")


def _encode_line(line: str) -> str:
    """One hard line, cut into physical lines joined by soft breaks."""
    if _LITERAL.fullmatch(line) and "." not in line[::_FILL]:
        # Nothing to escape (a URL, an address) and no period where a line would start:
        # only the soft breaks. The same bytes as the loop below gives, at a fraction of
        # its cost per recipient.
        return "=\r\n".join([line[i : i + _FILL] for i in range(0, len(line), _FILL)])
    physical: list[str] = []
    current: list[str] = []
    size = 0
    for byte in line.encode("utf-8"):
        token = _TOKENS[byte]
        if size + len(token) > _FILL:
            physical.append(_close(current))
            current, size = [], 0
        if not current and token == ".":
            token = _LEADING_PERIOD
        current.append(token)
        size += len(token)
    physical.append(_close(current))
    return "=\r\n".join(physical)


def _close(tokens: list[str]) -> str:
    # Whitespace at the end of an encoded line may be stripped in transit: encode it.
    if tokens and tokens[-1] in _AT_LINE_END:
        tokens[-1] = _AT_LINE_END[tokens[-1]]
    return "".join(tokens)
