"""The editor's note: a short introduction in a small, safe markup. Pure.

The markup, and nothing more:

- paragraphs are separated by a blank line (a single line break is a space);
- ``*emphasis*`` or ``_emphasis_``, ``**strong**``;
- ``[link text](https://example.com/page)``: http and https addresses only;
- a backslash keeps the next character as it is (``\\*`` is a star).

Everything else is text: HTML written into a note is shown as text, never interpreted. The
note is parsed once into paragraphs of spans; ``html`` writes them escaped, ``text`` writes
the plain-text twin (emphasis without its marks, each link's address whole on a line of
its own after the paragraph, numbered), and ``findings`` says what an editor should fix.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from urllib.parse import urlsplit

from markupsafe import Markup, escape

from digest.compose.placeholders import scrub

MAX_CHARS = 1200  # longer than that, it is an article, not an introduction
TEXT_WIDTH = 78


@dataclass(frozen=True)
class Span:
    text: str
    style: str = ""  # "", "em" or "strong"
    url: str | None = None  # a link when set (http or https, checked by ``findings``)


Paragraph = tuple[Span, ...]

_TOKEN = re.compile(
    r"\\(?P<escaped>.)"
    r"|\[(?P<label>(?:\\.|[^\]\\])+)\]\((?P<url>(?:[^()\s]|\([^()\s]*\))*)\)"
    r"|\*\*(?P<strong>(?:\\.|[^*\\])+)\*\*"
    r"|\*(?P<star>(?:\\.|[^*\\])+)\*"
    r"|(?<![\w])_(?P<under>(?:\\.|[^_\\])+)_(?![\w])",
    re.DOTALL,
)
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_LOOSE_MARK = re.compile(r"\*|\[[^\]]*\]\(")  # a star or a link's start that no mark took


def parse(note: str) -> tuple[Paragraph, ...]:
    """The note's paragraphs, each a tuple of spans (placeholders defused)."""
    blocks = re.split(r"\n\s*\n", scrub(note.replace("\r\n", "\n").replace("\r", "\n")))
    paragraphs = []
    for block in blocks:
        line = " ".join(block.split())
        if line:
            paragraphs.append(_spans(line))
    return tuple(paragraphs)


def _spans(line: str) -> Paragraph:
    spans: list[Span] = []
    at = 0
    for match in _TOKEN.finditer(line):
        if match.start() > at:
            spans.append(Span(line[at : match.start()]))
        at = match.end()
        if match["escaped"] is not None:
            spans.append(Span(match["escaped"]))
        elif match["label"] is not None:
            spans.append(Span(_plain(match["label"]), url=match["url"]))
        elif match["strong"] is not None:
            spans.append(Span(_plain(match["strong"]), "strong"))
        else:
            spans.append(Span(_plain(match["star"] or match["under"]), "em"))
    if at < len(line):
        spans.append(Span(line[at:]))
    return tuple(_merged(spans))


def _plain(value: str) -> str:
    return _UNESCAPE.sub(r"\1", value)


def _merged(spans: list[Span]) -> list[Span]:
    """Adjacent plain spans as one (escapes split them)."""
    out: list[Span] = []
    for span in spans:
        if out and _is_plain(span) and _is_plain(out[-1]):
            out[-1] = Span(out[-1].text + span.text)
        else:
            out.append(span)
    return out


def _is_plain(span: Span) -> bool:
    return not span.style and span.url is None


def is_web_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def html(paragraphs: tuple[Paragraph, ...], link_class: str = "note-link") -> Markup:
    """The note as HTML paragraphs, every piece of text escaped; a link whose address is not
    http(s) is written as its text alone."""
    out = []
    for paragraph in paragraphs:
        parts = []
        for span in paragraph:
            text = escape(span.text)
            if span.url is not None and is_web_url(span.url):
                text = Markup('<a class="{}" href="{}">{}</a>').format(link_class, span.url, text)
            if span.style:
                text = Markup("<{0}>{1}</{0}>").format(Markup(span.style), text)
            parts.append(text)
        out.append(Markup('<p class="note-text">{}</p>').format(Markup("").join(parts)))
    return Markup("\n").join(out)


def text(paragraphs: tuple[Paragraph, ...], width: int = TEXT_WIDTH) -> str:
    """The note as plain text: prose wrapped at ``width``, each link's text followed by its
    number; after the paragraph, each number with the link's text, and its address whole on
    a line of its own (as the text part writes every link)."""
    blocks = []
    number = 0
    for paragraph in paragraphs:
        words, urls = [], []
        for span in paragraph:
            words.append(span.text)
            if span.url is not None and is_web_url(span.url):
                number += 1
                words.append(f" [{number}]")
                urls.append(f"[{number}] {span.text}:\n{span.url}")
        prose = textwrap.fill(
            "".join(words), width=width, break_long_words=False, break_on_hyphens=False
        )
        blocks.append("\n".join([prose, *urls]))
    return "\n\n".join(blocks)


def findings(note: str) -> list[tuple[str, str]]:
    """(severity, what) for each problem of a note: a link that is not an http(s) address is
    an error (it would be left out); HTML, an unclosed mark or a note past ``MAX_CHARS`` is
    worth a warning."""
    found: list[tuple[str, str]] = []
    for paragraph in parse(note):
        for span in paragraph:
            if span.url is not None and not is_web_url(span.url):
                found.append(
                    ("error", f"the link [{span.text}]({span.url}) is not an http(s) address")
                )
    for block in re.split(r"\n\s*\n", note):
        line = " ".join(block.split())
        rest = _TOKEN.sub(" ", line)  # what no mark took (escaped characters included)
        if _TAG.search(rest):
            found.append(("warning", "HTML in the note is shown as text, not applied"))
        elif _LOOSE_MARK.search(rest):
            found.append(("warning", f"an unclosed mark in {_excerpt(line)!r} is shown as is"))
    if len(note) > MAX_CHARS:
        found.append(("warning", f"the note is {len(note)} characters, over {MAX_CHARS}"))
    return found


def _excerpt(value: str, size: int = 40) -> str:
    return value if len(value) <= size else value[: size - 1] + "…"
