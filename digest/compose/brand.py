"""A list's brand in the email: its colours in light and dark mode, its logo, and whether
each colour keeps a readable contrast with what it is shown on. Pure.

The brand colour paints the header (white text on it) and the section titles; the accent
colour, the links and the button (white text on it). In dark mode the section titles and
links turn to a lighter tint of each, given in the list or derived here; the header and the
button keep their light-mode colours, white text on them.
"""

from __future__ import annotations

from dataclasses import dataclass

from digest.compose.styles import contrast, parse_colour
from digest.config import DEFAULT_ACCENT_COLOR, DEFAULT_BRAND_COLOR, ListConfig

MIN_CONTRAST = 4.5
WHITE = "#ffffff"
# The email's own backgrounds (templates/base.css and head.css).
LIGHT_BODY, LIGHT_FOOTER = "#ffffff", "#f4f4f5"
DARK_BODY, DARK_FOOTER = "#1e1e1e", "#121212"
# The tints the bundled colours have always had in dark mode.
_DARK_DEFAULTS = {DEFAULT_BRAND_COLOR: "#9cc3ff", DEFAULT_ACCENT_COLOR: "#8ab4f8"}


@dataclass(frozen=True)
class Brand:
    color: str
    accent: str
    color_dark: str
    accent_dark: str

    def as_dict(self) -> dict[str, str]:
        return {
            "color": self.color,
            "accent": self.accent,
            "color_dark": self.color_dark,
            "accent_dark": self.accent_dark,
        }


@dataclass(frozen=True)
class ContrastProblem:
    """A colour pair under 4.5:1: what it colours, in which mode, and what to change."""

    scheme: str  # "light", "dark", or "light and dark"
    what: str
    foreground: str
    background: str
    ratio: float
    setting: str
    fix: str

    def __str__(self) -> str:
        return (
            f"{self.scheme} mode: {self.what} {self.foreground} on {self.background} "
            f"is {self.ratio:.2f}:1, under {MIN_CONTRAST}:1; {self.fix}"
        )


def brand_of(lst: ListConfig) -> Brand:
    return Brand(
        color=lst.brand_color,
        accent=lst.accent_color,
        color_dark=lst.brand_color_dark or dark_tint(lst.brand_color),
        accent_dark=lst.accent_color_dark or dark_tint(lst.accent_color),
    )


def ratio(foreground: str, background: str) -> float:
    """The WCAG 2 contrast ratio of two ``#rrggbb`` colours, 1 to 21."""
    return contrast(parse_colour(foreground), parse_colour(background))


def dark_tint(colour: str) -> str:
    """``colour`` mixed with white until it reads at 4.5:1 or more on the dark backgrounds."""
    if colour.lower() in _DARK_DEFAULTS:
        return _DARK_DEFAULTS[colour.lower()]
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    for step in range(21):
        share = step / 20
        mixed = "#" + "".join(f"{round(c + (255 - c) * share):02x}" for c in rgb)
        if min(ratio(mixed, DARK_BODY), ratio(mixed, DARK_FOOTER)) >= MIN_CONTRAST:
            return mixed
    return WHITE


def contrast_problems(brand: Brand) -> list[ContrastProblem]:
    """Every brand colour pair of the email under 4.5:1, light and dark."""
    darker, lighter = "choose a darker {}", "choose a lighter {} (or leave it unset)"
    both = "light and dark"  # the header and the button look the same in either mode
    pairs = [
        (both, "the header's text", WHITE, brand.color, "brand_color", darker),
        ("light", "section titles", brand.color, LIGHT_BODY, "brand_color", darker),
        ("light", "links", brand.accent, LIGHT_BODY, "accent_color", darker),
        ("light", "footer links", brand.accent, LIGHT_FOOTER, "accent_color", darker),
        (both, "the button's text", WHITE, brand.accent, "accent_color", darker),
        ("dark", "section titles", brand.color_dark, DARK_BODY, "brand_color_dark", lighter),
        ("dark", "links", brand.accent_dark, DARK_BODY, "accent_color_dark", lighter),
        ("dark", "footer links", brand.accent_dark, DARK_FOOTER, "accent_color_dark", lighter),
    ]
    problems = []
    for scheme, what, fg, bg, setting, fix in pairs:
        value = ratio(fg, bg)
        if value < MIN_CONTRAST:
            problems.append(
                ContrastProblem(scheme, what, fg, bg, value, setting, fix.format(setting))
            )
    return problems
