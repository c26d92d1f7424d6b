"""The HTML part in a real browser (headless Debian chromium) at 320, 375 and 600 px, in
both layouts (rich and compact).

No horizontal scrolling at any width, visible text computed at 14 px or more, the dark-mode
rules taking effect. Screenshots go to build/screenshots/ (or $DIGEST_SCREENSHOTS) for review,
named EDITION-LAYOUT-WIDTH-SCHEME.png (golden-rich-320-dark.png).
"""

from __future__ import annotations

import re

import pytest

from digest.compose import Recipient, make_environment, personalize
from tests.support.browser import SCREENSHOTS as SHOTS
from tests.support.editions import (
    EMAIL_LAYOUTS,
    bodies,
    compose,
    golden_edition,
    long_edition,
    parse,
)
from tests.support.values import ROOT, SECRET_BYTES

WIDTHS = (320, 375, 600)
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


# Where the blocks of a right-to-left edition stand: each box's left and right edges, and
# those of the text inside it (a range over its contents), in px.
RTL_MEASURE = """(() => {
  const q = s => document.querySelector(s);
  const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.right]; };
  const text = e => { const g = document.createRange(); g.selectNodeContents(e);
                      const r = g.getBoundingClientRect(); return [r.left, r.right]; };
  const section = q(".section"), style = getComputedStyle(section), list = q(".more");
  const row = q(".items tr");
  const inner = [section.getBoundingClientRect().left + parseFloat(style.paddingLeft),
                 section.getBoundingClientRect().right - parseFloat(style.paddingRight)];
  return {
    direction: style.direction, inner,
    title: text(q(".section-title")), headline: text(q(".headline")),
    summary: text(q(".summary")), footer: text(q(".footer-text")), button: box(q(".button")),
    list: list && box(list), item: list && box(q(".more-item")),
    listPadding: list && [getComputedStyle(list).paddingLeft, getComputedStyle(list).paddingRight],
    itemDirection: getComputedStyle(q(".more-item") || q(".item-text")).direction,
    firstCell: row && box(row.cells[0]), lastCell: row && box(row.cells[row.cells.length - 1]),
  };
})()"""


def arabic_edition(newsletter):
    """The golden edition with its first section in Arabic; the others stay English, as
    wire copy in an Arabic newsletter would."""
    from dataclasses import replace

    from tests.support.editions import golden_edition

    edition = golden_edition(newsletter)
    first = edition.sections[0]
    lead = replace(
        first.articles[0],
        title="إطلاق أول قمر صناعي برازيلي إلى مدار قطبي «نجاح كامل»",
        summary="انطلق الصاروخ عند الفجر ووضع قمرين صغيرين لرصد الأرض في مدارهما، "
        "بحسب الوكالة؛ والرحلة التالية مقررة في الربيع.",
        byline="زوي ريبيرو",
        dateline="ساو باولو (أ ف ب)",
    )
    section = replace(first, title="الفضاء والإنترنت", articles=(lead, *first.articles[1:]))
    return replace(edition, sections=(section, *edition.sections[1:]))


@pytest.fixture(scope="module")
def localized_pages(tmp_path_factory):
    """The HTML parts of a German and an Arabic edition in each layout, as files."""
    from digest.config import load_newsletter
    from tests.support.editions import golden_edition

    newsletter = load_newsletter(ROOT / "digest.toml")
    folder = tmp_path_factory.mktemp("localized")
    written = {}
    for locale, edition in (("de", golden_edition(newsletter)), ("ar", arabic_edition(newsletter))):
        for layout in EMAIL_LAYOUTS:
            update = {"locale": locale, "layout": layout}
            lst = newsletter.get_list("daily").model_copy(update=update)
            _, template = compose(edition, newsletter, lst, make_environment(locale=locale))
            raw = personalize(template, Recipient(1, "reader@example.com"), secret=SECRET_BYTES)
            written[locale, layout] = folder / f"{locale}-{layout}.html"
            written[locale, layout].write_text(bodies(parse(raw.raw))[1], encoding="utf-8")
    return written


@pytest.mark.parametrize("layout", EMAIL_LAYOUTS)
@pytest.mark.parametrize("width", (320, 600, 700))
def test_an_arabic_edition_is_mirrored(browser, localized_pages, width, layout):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for dark in (False, True):
        page = browser.page(localized_pages["ar", layout], width, dark=dark)
        try:
            found = page.evaluate(MEASURE)
            at = page.evaluate(RTL_MEASURE)
            if width == 600:
                scheme = "dark" if dark else "light"
                page.screenshot(SHOTS / f"ar-{layout}-{width}-{scheme}.png")
        finally:
            page.close()
        assert found["scroll"] <= width, f"{found['scroll']} px wide at {width} px"
        assert found["small"] == [], found["small"]
        assert at["direction"] == "rtl" and at["itemDirection"] == "rtl"
        left, right = at["inner"]
        # The text starts at the right edge: the section's title (short, so its left edge is
        # well inside), the headline, the summary, the footer; the button too (on narrow
        # screens it spans the width).
        for name in ("title", "headline", "summary", "footer", "button"):
            assert abs(at[name][1] - right) <= 1, (name, at[name], at["inner"])
        assert at["title"][0] > left + 40, at["title"]
        if width > 620:
            assert at["button"][0] > left + 40, at["button"]
        if layout == "compact":
            # The further headlines: the bullets' room on the right, none on the left.
            assert at["listPadding"] == ["0px", "20px"], at["listPadding"]
            assert abs(at["item"][1] - (at["list"][1] - 20)) <= 1
            assert at["item"][0] == at["list"][0]
        else:
            # A headline's row starts at the right edge (its thumbnail, or its text) and the
            # text stands to the left of the thumbnail.
            assert abs(at["firstCell"][1] - right) <= 1, (at["firstCell"], at["inner"])
            assert at["lastCell"][1] <= at["firstCell"][0] + 1 or at["lastCell"] == at["firstCell"]


@pytest.mark.parametrize("width", (320, 600))
def test_a_german_edition_fits_and_is_readable(browser, localized_pages, width):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for dark in (False, True):
        page = browser.page(localized_pages["de", "rich"], width, dark=dark)
        try:
            found = page.evaluate(MEASURE)
            if width == 600:
                page.screenshot(SHOTS / f"de-rich-{width}-{'dark' if dark else 'light'}.png")
        finally:
            page.close()
        assert found["scroll"] <= width, f"{found['scroll']} px wide at {width} px"
        assert found["small"] == [], found["small"]
