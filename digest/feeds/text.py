"""Text from feed markup: plain text with nothing dangerous left, shortened, dateline split off.

Every string digest takes from a feed passes through ``plain_text`` or ``one_line``: nh3 (a
whitelist HTML sanitizer) removes every tag, the content of scripts, styles and embedded
objects with them, so no markup, event handler or ``javascript:`` URL survives into an email;
control characters and line breaks are gone, so nothing from a feed can split a mail header.
"""

from __future__ import annotations

import html
import re

import nh3

_BLOCK_TAG = re.compile(
    r"<(?=/?(?:p|div|br|hr|li|ul|ol|dd|dt|h[1-6]|tr|td|th|table|"
    r"blockquote|pre|section|article|figure|figcaption|header|footer)\b)",
    re.I,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff]")
_DROPPED_WITH_CONTENT = {"script", "style", "template", "noscript", "iframe", "object"}


def plain_text(value: str, *, is_html: bool = True) -> str:
    """Text without any markup: tags removed (scripts and styles with their content),
    entities decoded, whitespace collapsed to single spaces."""
    if is_html and "<" in (value or ""):
        # Block boundaries become spaces so that "<p>a</p><p>b</p>" does not read "ab".
        value = nh3.clean(
            _BLOCK_TAG.sub(" <", value or ""),
            tags=set(),
            attributes={},
            clean_content_tags=_DROPPED_WITH_CONTENT,
            link_rel=None,
        )
    if is_html:
        # Without a "<" there is no markup: nh3 would give back the text as given, NULs
        # dropped (most strings of a feed: titles, names, categories), at a tenth of the cost.
        value = html.unescape((value or "").replace("\x00", ""))
    return one_line(value)


def one_line(value: str | None) -> str:
    """Whitespace (CR and LF included) collapsed to single spaces, control characters gone."""
    return " ".join(_CONTROL.sub(" ", value or "").split())


def shorten(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to about ``limit`` characters, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:-\u2013\u2014") + "\u2026"


_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]{0,6}\.?"
_PLACE_WORD = r"(?:[A-Z][\w.'\u2019-]*|de|da|do|del|di|la|le|of|am|an|sur|al|el)"
_DATELINE = re.compile(
    rf"^(?P<dateline>[A-Z][\w.'\u2019-]*(?:,? {_PLACE_WORD}){{0,5}}"  # place, up to 6 words
    r" \([A-Z][\w&.' -]{0,38}\)"  # (agency)
    rf" {_MONTH} \d{{1,2}}, \d{{4}})"  # Nov 24, 2026
    r"\s+[-\u2013\u2014]+\s*"
)


def split_dateline(summary: str) -> tuple[str | None, str]:
    """("Seoul (AFP) Nov 24, 2026", rest) when the summary opens with a wire dateline."""
    match = _DATELINE.match(summary)
    if not match:
        return None, summary
    return match["dateline"], summary[match.end() :]
