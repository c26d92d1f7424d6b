"""The HTML part in a real browser (headless Debian chromium) at 320, 375 and 600 px, in
both layouts (rich and compact).

No horizontal scrolling at any width, visible text computed at 14 px or more, the dark-mode
rules taking effect. Screenshots go to build/screenshots/ (or $DIGEST_SCREENSHOTS) for review,
named EDITION-LAYOUT-WIDTH-SCHEME.png (golden-rich-320-dark.png).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from digest.compose import Recipient, make_environment, personalize
from tests.support.editions import bodies, compose, golden_edition, long_edition, parse
from tests.support.values import ROOT, SECRET_BYTES

# Read at import: the autouse fixture clears DIGEST_* variables before each test runs.
SHOTS = Path(os.environ.get("DIGEST_SCREENSHOTS") or ROOT / "build" / "screenshots")
WIDTHS = (320, 375, 600)
EMAIL_LAYOUTS = ("rich", "compact")
PICTURE = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="427" viewBox="0 0 640 427">'
    '<rect width="640" height="427" fill="#7d8fa3"/><circle cx="480" cy="110" r="60" '
    'fill="#e8d28a"/><path d="M0 427 L220 200 L380 330 L470 250 L640 400 V427 Z" '
    'fill="#3f5368"/></svg>'
)

MEASURE = """(() => {
  const root = document.documentElement, small = [];
  for (const el of document.body.querySelectorAll("*")) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 &&
      n.textContent.replace(/[\\s\\u034f\\u200c\\u00a0]/g, "").length);
    if (!own || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || el.closest("[aria-hidden=true]")) continue;
    const size = parseFloat(style.fontSize);
    if (size < 14) small.push(`${el.tagName.toLowerCase()}.${el.className}: ${size}px`);
  }
  const section = document.querySelector(".section");
  return {inner: innerWidth, scroll: Math.max(root.scrollWidth, document.body.scrollWidth),
          small, sectionBackground: section && getComputedStyle(section).backgroundColor};
})()"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    from digest.config import load_newsletter

    newsletter = load_newsletter(ROOT / "digest.toml")
    lst = newsletter.get_list("daily")
    folder = tmp_path_factory.mktemp("pages")
    written = {}
    for layout in EMAIL_LAYOUTS:
        shaped = lst.model_copy(update={"layout": layout})
        for name, edition in (("golden", golden_edition(newsletter)), ("long", long_edition())):
            _, template = compose(edition, newsletter, shaped, make_environment())
            raw = personalize(template, Recipient(1, "reader@example.com"), secret=SECRET_BYTES).raw
            page = bodies(parse(raw))[1]
            path = folder / f"{name}-{layout}.html"
            path.write_text(page, encoding="utf-8")  # pictures blocked: their alt text shows
            written[f"{name}-{layout}"] = path
            if name != "golden":
                continue
            # And with pictures: a local stand-in for every one (3:2, as the feeds' are).
            path = folder / f"{name}-pictures-{layout}.html"
            path.write_text(re.sub(r"https://img\.[^\"]+", "picture.svg", page), encoding="utf-8")
            written[f"{name}-pictures-{layout}"] = path
    (folder / "picture.svg").write_text(PICTURE, encoding="utf-8")
    return written


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("layout", EMAIL_LAYOUTS)
@pytest.mark.parametrize("name", ["golden", "golden-pictures", "long"])
def test_no_horizontal_scrolling_and_readable_text(browser, pages, name, layout, width):
    SHOTS.mkdir(parents=True, exist_ok=True)
    name = f"{name}-{layout}"
    for dark in (False, True):
        page = browser.page(pages[name], width, dark=dark)
        try:
            found = page.evaluate(MEASURE)
            page.screenshot(SHOTS / f"{name}-{width}-{'dark' if dark else 'light'}.png")
        finally:
            page.close()
        assert found["inner"] == width
        assert found["scroll"] <= width, f"{found['scroll']} px wide at {width} px"
        assert found["small"] == [], found["small"]
        # The head's dark rules win over the inline light background only in dark mode.
        assert found["sectionBackground"] == ("rgb(30, 30, 30)" if dark else "rgb(255, 255, 255)")
    assert (SHOTS / f"{name}-{width}-dark.png").stat().st_size > 1000


def test_the_measure_sees_overflow_and_small_text(browser, tmp_path):
    wide = tmp_path / "wide.html"
    wide.write_text(
        '<!DOCTYPE html><html><head><meta name="viewport" '
        'content="width=device-width"></head><body>'
        '<table width="700"><tr><td style="font-size:12px">wide</td></tr></table>'
        "</body></html>"
    )
    page = browser.page(wide, 320)
    try:
        found = page.evaluate(MEASURE)
    finally:
        page.close()
    assert found["scroll"] > 320 and found["small"] == ["td.: 12px"]
