"""The lint for a composed message: ``check(raw) -> [Finding]``. Pure.

It reads one message's bytes as a receiving client would and reports what would break,
clip, hide or mislabel it, each finding with its severity, what is wrong and where:

- errors stop ``digest send`` before anything is sent: a missing or repeated header, an
  encoded List-Unsubscribe, HTML past the size budget, no doctype/lang/charset, scripts,
  forms or external stylesheets, images without https/alt/width, links that are relative or
  have no discernible text, text under 4.5:1 contrast in light or dark mode, placeholders
  left unreplaced;
- warnings are worth a look but do not stop a send (a long plain-text line, a preheader of
  odd length, a colour that is not six-digit hex, a URL of the HTML missing from the text).

Contrast is WCAG 2 relative luminance of each visible text's inlined colour against its
effective background (the nearest ancestor with a background colour). Dark mode applies the
head's ``@media (prefers-color-scheme: dark)`` rules on top, as Apple Mail and others do.
The 4.5:1 bar is applied to all text, large or not: stricter than WCAG's 3:1 for large text,
and simpler to keep.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from lxml import html as lxml_html
from lxml.html import HtmlElement

from digest.compose.placeholders import PREFIX
from digest.compose.render import HTML_BUDGET, PREHEADER_MAX, PREHEADER_MIN, TEXT_WIDTH
from digest.compose.styles import DARK, Styles, contrast, parse_colour

ERROR, WARNING = "error", "warning"
STYLE_BUDGET = 16_384  # Gmail ignores <style> past 16 KB in total
MIN_CONTRAST = 4.5
SINGLE_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Feedback-ID",
    "Auto-Submitted",
)
# These carry machine-read values: an RFC 2047 encoded word would make them unreadable.
UNENCODED = (
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Feedback-ID",
    "Auto-Submitted",
    "Content-Type",
)
_URL_LINE = re.compile(r"\s*(\S+:)?\s*<?(https?|mailto):\S+>?\s*")


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" or "warning"
    code: str  # a short stable name, e.g. "contrast"
    what: str
    where: str

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.what} [{self.code}]"


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == ERROR]


def check(raw: bytes) -> list[Finding]:
    """Every finding for the message ``raw`` (its exact bytes, as they would be sent)."""
    found: list[Finding] = []
    message = message_from_bytes(raw, policy=policy.default)
    found += _headers(raw, message)
    plain, page = _parts(message, found)
    if page is not None:
        found += _html(page)
    if plain is not None:
        found += _text(plain, page)
    return found


# -- headers and MIME -------------------------------------------------------------------------


def _headers(raw: bytes, message: EmailMessage) -> list[Finding]:
    found = []
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    lines = head.split(b"\n")
    for number, raw_line in enumerate(lines, 1):
        if len(raw_line.rstrip(b"\r")) > 998:
            found.append(
                Finding(
                    ERROR,
                    "header-line",
                    "header line longer than 998 bytes",
                    f"header line {number}",
                )
            )
        if not raw_line.isascii():
            found.append(
                Finding(
                    ERROR, "header-8bit", "raw 8-bit bytes in a header", f"header line {number}"
                )
            )
    unfolded = re.sub(rb"\r?\n[ \t]", b" ", head).decode("ascii", "replace").splitlines()
    fields: dict[str, list[str]] = {}
    for line in unfolded:
        name, _, value = line.partition(":")
        fields.setdefault(name.strip().lower(), []).append(value.strip())
    for name in SINGLE_HEADERS:
        count = len(fields.get(name.lower(), []))
        if count != 1:
            found.append(
                Finding(
                    ERROR,
                    "header-count",
                    f"{name} appears {count} times; it must appear once",
                    f"header {name}",
                )
            )
    for name in UNENCODED:
        for value in fields.get(name.lower(), []):
            if "=?" in value:
                found.append(
                    Finding(
                        ERROR,
                        "header-encoded",
                        f"{name} is RFC 2047 encoded; receivers cannot read it",
                        f"header {name}",
                    )
                )
    for value in fields.get("list-unsubscribe", []):
        if re.search(r"<https://[^>\s]+>", value):
            continue
        # A local preview or demo runs on http://127.0.0.1: worth saying, not worth stopping.
        local = re.search(r"<http://(127\.0\.0\.1|localhost|\[::1\])[:/]", value)
        found.append(
            Finding(
                WARNING if local else ERROR,
                "list-unsubscribe",
                "List-Unsubscribe has no https URL, which one-click unsubscribe "
                "needs (set DIGEST_BASE_URL to the public https address)",
                "header List-Unsubscribe",
            )
        )
    for value in fields.get("list-unsubscribe-post", []):
        if value != "List-Unsubscribe=One-Click":
            found.append(
                Finding(
                    ERROR,
                    "list-unsubscribe-post",
                    f"List-Unsubscribe-Post is {value!r}, not "
                    "'List-Unsubscribe=One-Click' (RFC 8058)",
                    "header List-Unsubscribe-Post",
                )
            )
    if PREFIX.encode() in head:
        found.append(
            Finding(ERROR, "placeholder", "a recipient placeholder was not replaced", "headers")
        )
    return found


def _parts(message: EmailMessage, found: list[Finding]) -> tuple[str | None, str | None]:
    if message.get_content_type() != "multipart/alternative":
        found.append(
            Finding(
                ERROR,
                "mime",
                f"the message is {message.get_content_type()}, not multipart/alternative",
                "header Content-Type",
            )
        )
        return None, None
    parts = list(message.iter_parts())
    types = [p.get_content_type() for p in parts]
    if types != ["text/plain", "text/html"]:
        found.append(
            Finding(
                ERROR,
                "mime",
                f"parts are {types}; want text/plain then text/html "
                "(clients show the last part they can)",
                "MIME structure",
            )
        )
    bodies: dict[str, str] = {}
    for part in parts:
        if part.get_content_charset() != "utf-8":
            found.append(
                Finding(
                    ERROR,
                    "charset",
                    f"{part.get_content_type()} part is not declared UTF-8",
                    f"{part.get_content_type()} part",
                )
            )
        bodies.setdefault(part.get_content_type(), part.get_content().replace("\r\n", "\n"))
    return bodies.get("text/plain"), bodies.get("text/html")


# -- the HTML part ----------------------------------------------------------------------------


def _where(element: HtmlElement) -> str:
    label = str(element.tag)
    classes = element.get("class")
    if classes:
        label += "." + ".".join(classes.split())
    return f"html line {element.sourceline}: <{label}>"


def _html(page: str) -> list[Finding]:
    found = []
    size = len(page.encode("utf-8"))
    if size > HTML_BUDGET:
        found.append(
            Finding(
                ERROR,
                "html-size",
                f"HTML is {size:,} bytes, over the "
                f"{HTML_BUDGET:,}-byte budget (Gmail clips at about 102 KB)",
                "text/html part",
            )
        )
    if PREFIX in page:
        found.append(
            Finding(
                ERROR, "placeholder", "a recipient placeholder was not replaced", "text/html part"
            )
        )
    if not re.match(r"\s*<!doctype html>", page, re.I):
        found.append(
            Finding(ERROR, "doctype", "no HTML5 doctype (<!DOCTYPE html>) first", "html line 1")
        )
    doc = lxml_html.document_fromstring(page)
    found += _document(doc)
    found += _elements(doc)
    found += _colours(doc)
    return found


def _document(doc: HtmlElement) -> list[Finding]:
    found = []
    for name in ("lang", "dir"):
        if not (doc.get(name) or "").strip():
            found.append(
                Finding(ERROR, "html-" + name, f"<html> has no {name} attribute", _where(doc))
            )
    if not "".join(doc.xpath("//head/title//text()")).strip():
        found.append(
            Finding(ERROR, "title", "no <title> (screen readers announce it)", "html <head>")
        )
    charset = doc.xpath("//head/meta[@charset]/@charset")
    if [c.lower() for c in charset] != ["utf-8"]:
        found.append(
            Finding(ERROR, "meta-charset", 'no <meta charset="utf-8"> in <head>', "html <head>")
        )
    if not doc.xpath("//head/meta[@name='viewport']"):
        found.append(
            Finding(
                ERROR,
                "meta-viewport",
                "no viewport <meta> (phones would zoom out to a desktop width)",
                "html <head>",
            )
        )
    if not doc.xpath("//head/meta[@name='color-scheme']"):
        found.append(
            Finding(
                WARNING,
                "meta-color-scheme",
                "no color-scheme <meta>: clients may invert colours on their own in dark mode",
                "html <head>",
            )
        )
    total = 0
    for style in doc.iter("style"):
        total += len((style.text or "").encode("utf-8"))
        if not any(a.tag == "head" for a in style.iterancestors()):
            found.append(
                Finding(
                    ERROR, "style-in-body", "<style> outside <head>: Gmail drops it", _where(style)
                )
            )
    if total > STYLE_BUDGET:
        found.append(
            Finding(
                ERROR,
                "style-size",
                f"<style> blocks hold {total:,} bytes; Gmail ignores them past {STYLE_BUDGET:,}",
                "html <head>",
            )
        )
    return found


def _elements(doc: HtmlElement) -> list[Finding]:
    found = []
    for element in doc.iter():
        if not isinstance(element.tag, str):
            continue
        tag = element.tag
        if tag in ("script", "form", "iframe", "object", "embed", "input", "button"):
            found.append(
                Finding(
                    ERROR,
                    "forbidden",
                    f"<{tag}> does not work in email clients and raises spam scores",
                    _where(element),
                )
            )
        elif tag == "link" and "stylesheet" in (element.get("rel") or "").lower():
            found.append(
                Finding(
                    ERROR,
                    "external-css",
                    "external stylesheet: email clients do not load it",
                    _where(element),
                )
            )
        elif tag == "table" and element.get("role") != "presentation":
            found.append(
                Finding(
                    ERROR,
                    "table-role",
                    'layout table without role="presentation" (screen readers read it as data)',
                    _where(element),
                )
            )
        elif tag == "img":
            found += _image(element)
        elif tag == "a":
            found += _link(element)
    return found


def _image(img: HtmlElement) -> list[Finding]:
    found = []
    src = img.get("src") or ""
    if not src.startswith("https://"):
        found.append(
            Finding(
                ERROR,
                "img-src",
                f"image source {src[:80]!r} is not an absolute https URL",
                _where(img),
            )
        )
    if img.get("alt") is None:
        found.append(Finding(ERROR, "img-alt", "image without alt text", _where(img)))
    if not (img.get("width") or "").isdigit():
        found.append(
            Finding(
                ERROR,
                "img-width",
                "image without a width attribute in pixels (Outlook shows it at its full size)",
                _where(img),
            )
        )
    return found


def _link(a: HtmlElement) -> list[Finding]:
    found = []
    href = (a.get("href") or "").strip()
    if not re.match(r"(https?://[^/\s]+|mailto:\S+@)", href):
        found.append(Finding(ERROR, "link-href", f"link {href[:80]!r} is not absolute", _where(a)))
    name = (
        a.get("aria-label")
        or a.text_content()
        or " ".join(i.get("alt") or "" for i in a.iter("img"))
    )
    if not name.strip():
        found.append(Finding(ERROR, "link-text", "link without discernible text", _where(a)))
    return found


def _colours(doc: HtmlElement) -> list[Finding]:
    found, seen = [], set()
    styles = Styles(doc)
    for element in doc.iter():
        if not isinstance(element.tag, str):
            continue
        for prop in ("color", "background-color"):
            value = styles.inline(element).get(prop)
            if value and not re.fullmatch(r"#[0-9a-fA-F]{6}", value) and value not in seen:
                seen.add(value)
                found.append(
                    Finding(
                        WARNING,
                        "colour-format",
                        f"{prop} {value!r} is not a "
                        "six-digit hex colour, which every client understands",
                        _where(element),
                    )
                )
        if not styles.has_text(element) or styles.hidden(element):
            continue
        for scheme in ("light", DARK):
            fg, bg = styles.colour(element, scheme), styles.background(element, scheme)
            ratio = contrast(parse_colour(fg), parse_colour(bg))
            if ratio < MIN_CONTRAST:
                found.append(
                    Finding(
                        ERROR,
                        "contrast",
                        f"text {fg} on {bg} is {ratio:.2f}:1 in "
                        f"{scheme} mode; it needs {MIN_CONTRAST}:1",
                        _where(element),
                    )
                )
    return found


# -- the plain-text part ----------------------------------------------------------------------


def _text(plain: str, page: str | None) -> list[Finding]:
    found = []
    if PREFIX in plain:
        found.append(
            Finding(
                ERROR, "placeholder", "a recipient placeholder was not replaced", "text/plain part"
            )
        )
    for number, line in enumerate(plain.split("\n"), 1):
        if len(line) > 998:
            found.append(
                Finding(
                    ERROR, "text-line", "line longer than 998 characters", f"text line {number}"
                )
            )
        elif len(line) > TEXT_WIDTH and not _URL_LINE.fullmatch(line):
            found.append(
                Finding(
                    WARNING,
                    "text-width",
                    f"line of {len(line)} characters (prose wraps at {TEXT_WIDTH})",
                    f"text line {number}",
                )
            )
    if page is not None:
        found += _twin(plain, page)
    return found


def _twin(plain: str, page: str) -> list[Finding]:
    """The text part should carry the HTML part's links: filters score parts that differ."""
    doc = lxml_html.document_fromstring(page)
    lines = {line.strip() for line in plain.split("\n")}
    missing = [
        h
        for h in dict.fromkeys(doc.xpath("//body//a/@href"))
        if h.startswith("http") and h not in lines
    ]
    preheader = doc.xpath("//body/*[1][contains(@class, 'preheader')]")
    found = [
        Finding(
            WARNING,
            "text-twin",
            f"link {href[:100]} of the HTML part is not on a line of its own in the text part",
            "text/plain part",
        )
        for href in missing
    ]
    if preheader:
        size = len(preheader[0].text_content().strip(" \u034f\u200c\u00a0"))
        if not PREHEADER_MIN <= size <= PREHEADER_MAX:
            found.append(
                Finding(
                    WARNING,
                    "preheader",
                    f"preheader of {size} characters "
                    f"(inboxes show {PREHEADER_MIN}-{PREHEADER_MAX})",
                    _where(preheader[0]),
                )
            )
    return found
