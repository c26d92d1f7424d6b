"""The HTML part in a real browser (headless Debian chromium) at 320, 375 and 600 px.

No horizontal scrolling at any width, visible text computed at 14 px or more, the dark-mode
rules taking effect. Screenshots go to build/screenshots/ (or $DIGEST_SCREENSHOTS) for review.
"""

from __future__ import annotations

import pytest

from digest.compose import Recipient, make_environment, personalize
from tests.support.browser import SCREENSHOTS as SHOTS
from tests.support.editions import bodies, compose, golden_edition, long_edition, parse
from tests.support.values import ROOT, SECRET_BYTES

WIDTHS = (320, 375, 600)

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
    for name, edition in (("golden", golden_edition(newsletter)), ("long", long_edition())):
        _, template = compose(edition, newsletter, lst, make_environment())
        raw = personalize(template, Recipient(1, "reader@example.com"), secret=SECRET_BYTES).raw
        path = folder / f"{name}.html"
        path.write_text(bodies(parse(raw))[1], encoding="utf-8")
        written[name] = path
    return written


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["golden", "long"])
def test_no_horizontal_scrolling_and_readable_text(browser, pages, name, width):
    SHOTS.mkdir(parents=True, exist_ok=True)
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
