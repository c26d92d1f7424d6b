"""The colours a composed HTML part shows, light and dark, and their WCAG contrast. Pure.

``Styles`` reads a parsed document the way an email client does for colour: the inline
``style`` attributes (what every client applies), with the ``@media (prefers-color-scheme:
dark)`` rules of the ``<style>`` in ``<head>`` on top in dark mode. A head rule wins over an
inline declaration only when it is ``!important``, as in CSS. Text colour is inherited from
the nearest ancestor that sets one; the background is that of the nearest ancestor (or the
element itself) that paints one.
"""

from __future__ import annotations

import re

from lxml.cssselect import CSSSelector
from lxml.html import HtmlElement

DARK = "dark"
DEFAULT_TEXT, DEFAULT_BACKGROUND = "#000000", "#ffffff"
_NAMED = {"white": "#ffffff", "black": "#000000"}
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_HEX = re.compile(r"#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b")
_INVISIBLE = " \t\r\n\u034f\u200c\u200b\u00a0\u2007\u00ad"


def parse_colour(value: str) -> tuple[float, float, float] | None:
    """``#rrggbb``, ``#rgb``, ``rgb(r, g, b)`` or white/black as 0-1 channels, else None."""
    value = _NAMED.get(value.strip().lower(), value.strip())
    if re.fullmatch(r"#[0-9a-fA-F]{3}", value):
        value = "#" + "".join(c * 2 for c in value[1:])
    if re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        return tuple(int(value[i : i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]
    match = re.fullmatch(
        r"rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*(?:,\s*1(?:\.0*)?\s*)?\)", value
    )
    if match:
        return tuple(min(int(g), 255) / 255 for g in match.groups())  # type: ignore[return-value]
    return None


def luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG 2 relative luminance."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(fg: tuple[float, float, float] | None, bg: tuple[float, float, float] | None) -> float:
    """WCAG contrast ratio, 1 to 21 (21 when a colour cannot be read: nothing to report)."""
    if fg is None or bg is None:
        return 21.0
    high, low = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def declarations(block: str) -> dict[str, tuple[str, bool]]:
    """``prop: value [!important]; ...`` as {prop: (value, important)}."""
    out = {}
    for item in block.split(";"):
        name, sep, value = item.partition(":")
        if not sep:
            continue
        important = "!important" in value
        out[name.strip().lower()] = (value.replace("!important", "").strip(), important)
    return out


def dark_rules(css: str) -> list[tuple[str, dict[str, tuple[str, bool]]]]:
    """(selector, declarations) of every rule inside a prefers-color-scheme: dark query."""
    rules: list[tuple[str, dict[str, tuple[str, bool]]]] = []
    css, pos = _COMMENT.sub("", css), 0
    while True:
        start = css.find("{", pos)
        if start < 0:
            return rules
        prelude, end = css[pos:start].strip(), _closing(css, start)
        if prelude.startswith("@media") and re.search(r"prefers-color-scheme\s*:\s*dark", prelude):
            for selector, block in re.findall(r"([^{}]+)\{([^{}]*)\}", css[start + 1 : end]):
                rules.extend((s.strip(), declarations(block)) for s in selector.split(","))
        pos = end + 1


def _closing(css: str, start: int) -> int:
    depth = 0
    for index in range(start, len(css)):
        depth += {"{": 1, "}": -1}.get(css[index], 0)
        if depth == 0:
            return index
    return len(css) - 1


class Styles:
    """Inline and dark-mode colours of the elements of one parsed document."""

    def __init__(self, doc: HtmlElement) -> None:
        self._inline: dict[HtmlElement, dict[str, str]] = {}
        self._dark: dict[HtmlElement, dict[str, tuple[str, bool]]] = {}
        css = "\n".join(s.text or "" for s in doc.iter("style"))
        for selector, decls in dark_rules(css):
            try:
                matches = CSSSelector(selector)(doc)
            except Exception:  # a selector lxml cannot evaluate (e.g. a pseudo-class)
                continue
            for element in matches:
                self._dark.setdefault(element, {}).update(decls)

    def inline(self, element: HtmlElement) -> dict[str, str]:
        if element not in self._inline:
            parsed = declarations(element.get("style") or "")
            self._inline[element] = {k: v for k, (v, _) in parsed.items()}
        return self._inline[element]

    def _own(self, element: HtmlElement, prop: str, scheme: str) -> str | None:
        inline = self.inline(element)
        if scheme == DARK and prop in self._dark.get(element, {}):
            value, important = self._dark[element][prop]
            if important or prop not in inline:
                return value
        return inline.get(prop)

    def colour(self, element: HtmlElement, scheme: str) -> str:
        for node in (element, *element.iterancestors()):
            value = self._own(node, "color", scheme)
            if value and value != "inherit":
                return value
        return DEFAULT_TEXT

    def background(self, element: HtmlElement, scheme: str) -> str:
        for node in (element, *element.iterancestors()):
            value = self._own(node, "background-color", scheme)
            if value is None:
                shorthand = self._own(node, "background", scheme) or ""
                found = _HEX.search(shorthand)
                value = found.group(0) if found else node.get("bgcolor")
            if value and value not in ("transparent", "inherit"):
                return value
        return DEFAULT_BACKGROUND

    def hidden(self, element: HtmlElement) -> bool:
        return any(
            self.inline(n).get("display", "").lower() == "none"
            for n in (element, *element.iterancestors())
        )

    @staticmethod
    def has_text(element: HtmlElement) -> bool:
        if (element.text or "").strip(_INVISIBLE):
            return True
        return any((child.tail or "").strip(_INVISIBLE) for child in element)
