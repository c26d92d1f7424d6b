"""The email's layouts (rich and compact), a list's brand (colours, logo) and its own
template folder: what each puts in the message, and what `digest check` says of them."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import html as lxml_html

from digest.compose import Recipient, make_environment, personalize
from digest.compose.brand import Brand, brand_of, contrast_problems, dark_tint, ratio
from digest.compose.check import check
from digest.compose.render import BLURB_CHARS, first_sentence, thumbnail
from digest.config import load_newsletter
from digest.errors import ConfigError
from digest.exits import ExitCode
from digest.models import Section
from tests.support.cli import load_sample, run, sample_settings, set_settings
from tests.support.editions import (
    article,
    bodies,
    compose,
    golden_edition,
    make_edition,
    parse,
    render_edition,
)
from tests.support.newsletters import list_config
from tests.support.values import ROOT, SAMPLES, SECRET_BYTES


def message(newsletter, lst, edition=None, env=None) -> tuple[str, str]:
    """(text, html) of a reader's message of ``edition`` (the golden one by default)."""
    edition = edition or golden_edition(newsletter)
    _, template = compose(edition, newsletter, lst, env or make_environment())
    raw = personalize(template, Recipient(1, "reader@example.com"), secret=SECRET_BYTES).raw
    return bodies(parse(raw))


# --- the blurb: a summary's first sentence, cut cleanly ----------------------------------


@pytest.mark.parametrize(
    ("summary", "blurb"),
    [
        ("The launch went well. Then it rained.", "The launch went well."),
        ("Was it late? Yes, by an hour.", "Was it late?"),
        (
            "Dr. Ruiz said the U.S. Space Force will fly it. Others disagree.",
            "Dr. Ruiz said the U.S. Space Force will fly it.",
        ),
        (
            "Gen. J. Ames flew on Jan. 3 with the crew. Next.",
            "Gen. J. Ames flew on Jan. 3 with the crew.",
        ),
        ("It cost 3.5 billion dollars. The rest", "It cost 3.5 billion dollars."),
        ('He said "it flies." Then he left.', 'He said "it flies."'),
        ("The answer was no. They tried again.", "The answer was no."),
        ("The No. 2 pad is ready. Crews wait.", "The No. 2 pad is ready."),
        (
            "It launched at 6 a.m. from the coast. More later.",
            "It launched at 6 a.m. from the coast.",
        ),
        ("A summary with no full stop at all", "A summary with no full stop at all"),
        ("  Spaces   and\nnew lines. Gone.", "Spaces and new lines."),
        ("", ""),
    ],
)
def test_the_blurb_is_the_summarys_first_sentence(summary, blurb):
    assert first_sentence(summary) == blurb


def test_a_long_first_sentence_is_cut_at_a_word_with_an_ellipsis():
    summary = "The agency said the satellites reached their planned orbit, " * 5 + "end. Next."
    blurb = first_sentence(summary, 80)
    assert len(blurb) <= 80 and blurb.endswith("…")
    assert summary.startswith(blurb[:-1])
    assert summary[len(blurb) - 1] in " ,"  # the cut falls between words, not inside one
    assert not blurb[:-1].endswith((",", " "))
    assert len(first_sentence(summary)) <= BLURB_CHARS


def test_a_single_overlong_word_is_still_cut_to_the_limit():
    assert len(first_sentence("x" * 500, 60)) <= 60


# --- thumbnails ---------------------------------------------------------------------------


def test_a_thumbnail_is_shown_at_half_its_files_size_or_less_keeping_its_ratio():
    src = "https://img.example/a.jpg"
    assert thumbnail(src, 640, 427) == {"src": src, "width": 96, "height": 64}
    assert thumbnail(src, 150, 100) == {"src": src, "width": 75, "height": 50}
    # Too small to show sharp at 48 px: no thumbnail rather than a blurry one.
    assert thumbnail(src, 80, 80) is None
    # A tall picture is shown narrower, at most 128 px high.
    assert thumbnail(src, 600, 1200) == {"src": src, "width": 64, "height": 128}
    # Unknown size: 96 px wide, and the browser keeps its ratio (no height attribute).
    assert thumbnail(src, None, None) == {"src": src, "width": 96, "height": None}
    assert thumbnail("http://img.example/a.jpg", 640, 427) is None
    assert thumbnail("", 640, 427) is None


def test_rich_headlines_carry_their_thumbnail_with_size_and_alt(newsletter, lst):
    _, page = message(newsletter, lst)
    doc = lxml_html.fromstring(page)
    thumbs = doc.xpath("//img[@class='thumb']")
    assert len(thumbs) == 2
    known, unknown = sorted(thumbs, key=lambda img: img.get("height") is None)
    assert (known.get("width"), known.get("height")) == ("96", "64")  # a 640 x 427 file
    assert unknown.get("width") == "96" and unknown.get("height") is None
    for img in thumbs:
        assert img.get("src").startswith("https://")
        link = img.xpath("ancestor::tr[1]//a[@class='item-link']")[0]
        assert img.get("alt") == link.text_content()  # the headline
        assert "height:auto" in img.get("style").replace(" ", "")


def test_an_article_without_a_picture_has_no_thumbnail_cell(newsletter, lst):
    _, page = message(newsletter, lst)
    doc = lxml_html.fromstring(page)
    rows = doc.xpath("//table[@class='items']//tr")
    assert len(rows) == 9  # three further headlines in each of three sections
    alone = [r for r in rows if not r.xpath(".//img")]
    assert len(alone) == 7
    assert all(r.xpath("td[@class='item-text']")[0].get("colspan") == "2" for r in alone)


def test_a_feeds_picture_size_is_kept_from_ingest_to_the_store(store):
    from digest.feeds.parse import parse as parse_feed

    now = datetime(2026, 11, 26, tzinfo=UTC)
    feed = parse_feed(
        (SAMPLES / "internet-space.xml").read_bytes(),
        source="internet-space.xml",
        section="internet-space",
        now=now,
    )
    sized = [a for a in feed.articles if a.image]
    assert sized and all((a.image_width, a.image_height) in ((640, 360), (640, 427)) for a in sized)
    store.sync_sections([("internet-space", "Internet Space", [])])
    store.save_articles(feed.articles, now)
    stored = {a.key: a for a in store.articles(section="internet-space")}
    for item in sized:
        assert (stored[item.key].image_width, stored[item.key].image_height) == (
            item.image_width,
            item.image_height,
        )


# --- the layouts --------------------------------------------------------------------------


def test_rich_is_the_default_and_compact_keeps_the_headline_list(newsletter, lst):
    assert lst.layout == "rich"
    rich_text, rich = message(newsletter, lst)
    compact_text, compact = message(newsletter, lst.model_copy(update={"layout": "compact"}))
    blurb = "\n  A short summary of the story"  # under a further headline of the text part
    assert blurb in rich_text and blurb not in compact_text
    assert 'class="items"' in rich and 'class="blurb"' in rich and 'class="more"' not in rich
    assert 'class="more"' in compact
    assert "blurb" not in compact and "thumb" not in compact


def test_every_further_headline_has_its_blurb_in_both_parts(newsletter, lst):
    edition = make_edition(newsletter, per_section=3)
    sections = tuple(
        Section(
            s.slug,
            s.title,
            tuple(
                article(s.slug, n, summary=f"Story {n} of {s.slug} is told here. More follows.")
                for n in range(3)
            ),
        )
        for s in edition.sections
    )
    text, page = message(
        newsletter, lst, edition.__class__(**{**edition.__dict__, "sections": sections})
    )
    doc = lxml_html.fromstring(page)
    blurbs = [p.text_content() for p in doc.xpath("//p[@class='blurb']")]
    expected = [f"Story {n} of {s.slug} is told here." for s in sections for n in (1, 2)]
    assert blurbs == expected
    flat = " ".join(text.split())
    for sentence in expected:
        assert sentence in flat
    # The lead keeps its whole summary rather than a blurb.
    assert "Story 0 of internet-space is told here. More follows." in flat


def test_a_summary_that_repeats_the_headline_gives_no_blurb(newsletter, lst):
    edition = make_edition(newsletter, per_section=2)
    title = "Rocket lands on barge"
    sections = tuple(
        Section(s.slug, s.title, (s.articles[0], article(s.slug, 1, title=title, summary=title)))
        for s in edition.sections
    )
    rendered = render_edition(edition, newsletter, lst, make_environment(), sections)
    assert 'class="blurb"' not in rendered.html
    assert f"* {title}\nhttps://" in rendered.text


def test_the_text_part_is_a_faithful_twin_in_both_layouts(newsletter, lst):
    for layout in ("rich", "compact"):
        text, page = message(newsletter, lst.model_copy(update={"layout": layout}))
        hrefs = set(lxml_html.fromstring(page).xpath("//a/@href"))
        assert hrefs and all(href in text for href in hrefs), layout
        # In this edition and the editor's note slot are in both layouts.
        assert "In this edition:" in text and "In this edition:" in page


def test_both_layouts_keep_the_editors_note(newsletter, lst):
    from dataclasses import replace

    from digest.models import Curation

    edition = golden_edition(newsletter)
    edition = replace(edition, curation=Curation(note="A word from the editors today."))
    for layout in ("rich", "compact"):
        text, page = message(newsletter, lst.model_copy(update={"layout": layout}), edition)
        assert "A word from the editors today." in text
        assert "A word from the editors today." in page


def test_the_rich_message_passes_check_without_findings(newsletter, lst):
    edition = golden_edition(newsletter)
    _, template = compose(edition, newsletter, lst, make_environment())
    raw = personalize(template, Recipient(1, "reader@example.com"), secret=SECRET_BYTES).raw
    assert check(raw) == []


def test_an_unknown_layout_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="layout"):
        load_newsletter(list_config(tmp_path, layout="magazine"))


# --- the brand ----------------------------------------------------------------------------


BRANDED = {"brand_color": "#5a1e6e", "accent_color": "#0f6e3c"}


def test_brand_colours_paint_the_header_titles_links_and_button(newsletter, lst):
    branded = lst.model_copy(update=BRANDED)
    _, page = message(newsletter, branded)
    doc = lxml_html.fromstring(page)

    def style(xpath: str) -> str:
        return doc.xpath(xpath)[0].get("style").replace(" ", "")

    assert "background-color:#5a1e6e" in style("//td[@class='header']")
    assert "color:#5a1e6e" in style("//h2[@class='section-title']")
    assert "color:#0f6e3c" in style("//a[@class='item-link']")
    assert "background-color:#0f6e3c" in style("//a[@class='button']")
    assert "color:#0f6e3c" in style("//a[@class='footer-link']")
    assert "#0b2545" not in page and "#0a58ca" not in page
    # Dark mode: lighter tints of both, derived to keep 4.5:1 on the dark backgrounds.
    head = doc.xpath("//style")[-1].text
    brand = brand_of(branded)
    assert f"color: {brand.color_dark} !important" in head
    assert f"color: {brand.accent_dark} !important" in head
    assert check(personalized(newsletter, branded)) == []


def personalized(newsletter, lst) -> bytes:
    _, template = compose(golden_edition(newsletter), newsletter, lst, make_environment())
    return personalize(template, Recipient(1, "reader@example.com"), secret=SECRET_BYTES).raw


def test_contrast_is_wcag_ratio():
    assert ratio("#ffffff", "#000000") == pytest.approx(21.0)
    assert ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert ratio("#0a58ca", "#ffffff") == ratio("#ffffff", "#0a58ca")


def test_the_bundled_colours_pass_in_light_and_dark():
    assert contrast_problems(Brand("#0b2545", "#0a58ca", "#9cc3ff", "#8ab4f8")) == []
    assert dark_tint("#0b2545") == "#9cc3ff" and dark_tint("#0a58ca") == "#8ab4f8"


def test_a_derived_dark_tint_always_passes():
    for colour in ("#5a1e6e", "#0f6e3c", "#000000", "#c0392b", "#123456"):
        tint = dark_tint(colour)
        assert ratio(tint, "#1e1e1e") >= 4.5 and ratio(tint, "#121212") >= 4.5, colour


def test_a_light_pair_under_4_5_is_named_with_both_colours_ratio_and_fix():
    problems = contrast_problems(Brand("#ffcc00", "#0a58ca", "#ffcc00", "#8ab4f8"))
    header = next(p for p in problems if p.what == "the header's text")
    assert (header.foreground, header.background, header.setting) == (
        "#ffffff",
        "#ffcc00",
        "brand_color",
    )
    assert str(header).startswith(
        "light and dark mode: the header's text #ffffff on #ffcc00 is 1.51:1"
    )
    titles = next(p for p in problems if p.what == "section titles")
    assert (titles.scheme, titles.foreground, titles.background) == ("light", "#ffcc00", "#ffffff")
    assert "under 4.5:1; choose a darker brand_color" in str(header)
    assert not [p for p in problems if p.setting.startswith("accent")]


def test_a_dark_pair_under_4_5_is_named_with_both_colours_ratio_and_fix():
    problems = contrast_problems(Brand("#0b2545", "#0a58ca", "#9cc3ff", "#333333"))
    assert {(p.scheme, p.what, p.background) for p in problems} == {
        ("dark", "links", "#1e1e1e"),
        ("dark", "footer links", "#121212"),
    }
    assert all("choose a lighter accent_color_dark" in str(p) for p in problems)
    assert "#333333 on #1e1e1e is 1.32:1" in str(problems[0])


def test_digest_check_reports_brand_contrast_as_an_error(monkeypatch, tmp_path, db_url):
    path = list_config(tmp_path, brand_color="#ffcc00", accent_color_dark="#333333")
    set_settings(monkeypatch, sample_settings(db_url, DIGEST_CONFIG=str(path)))
    load_sample()
    result = run("check", code=ExitCode.CHECK)
    assert (
        "error: lists.daily.brand_color: light and dark mode: the header's text #ffffff on #ffcc00"
        in result.output
    )
    assert "lists.daily.accent_color_dark: dark mode: links #333333 on #1e1e1e" in result.output
    assert "[brand-contrast]" in result.output


@pytest.mark.parametrize(
    ("keys", "message_part"),
    [
        ({"brand_color": "red"}, "brand_color: Value error"),
        ({"accent_color": "#0a58c"}, "accent_color"),
        ({"logo_url": "http://cdn.example/logo.png"}, "must be an absolute https:// URL"),
    ],
)
def test_bad_brand_settings_are_one_line_config_errors(tmp_path, keys, message_part):
    with pytest.raises(ConfigError) as caught:
        load_newsletter(list_config(tmp_path, **keys))
    assert "lists.0." in str(caught.value) and "\n" not in str(caught.value)
    assert message_part.split(":")[0] in str(caught.value)


def test_the_logo_replaces_the_name_and_the_title_shows_once(newsletter, lst):
    logo = "https://cdn.orbital-dispatch.example/logo.png"
    for layout in ("rich", "compact"):
        branded = lst.model_copy(
            update={"logo_url": logo, "logo_width": 180, "logo_height": 40, "layout": layout}
        )
        _, page = message(newsletter, branded)
        doc = lxml_html.fromstring(page)
        img = doc.xpath("//td[@class='header']//img[@class='logo']")[0]
        assert img.get("src") == logo and img.get("alt") == newsletter.name
        assert (img.get("width"), img.get("height")) == ("180", "40")
        assert img.getparent().get("href") == newsletter.website
        header = doc.xpath("//td[@class='header']")[0].text_content()
        assert header.count(lst.title) == 1
    named = lst.model_copy(update={"logo_url": logo, "logo_alt": "The Dispatch"})
    _, page = message(newsletter, named)
    img = lxml_html.fromstring(page).xpath("//img[@class='logo']")[0]
    assert img.get("alt") == "The Dispatch" and img.get("height") is None


def test_the_header_shows_the_lists_title_once_in_both_layouts(newsletter, lst):
    for layout in ("rich", "compact"):
        _, page = message(newsletter, lst.model_copy(update={"layout": layout}))
        header = lxml_html.fromstring(page).xpath("//td[@class='header']")[0].text_content()
        assert header.count(lst.title) == 1
        assert lxml_html.fromstring(page).xpath("//h1")[0].text_content() == newsletter.name


# --- a list's own template folder ---------------------------------------------------------


def test_a_list_folder_overrides_file_by_file_before_the_global_folder(tmp_path, newsletter, lst):
    own, shared = tmp_path / "own", tmp_path / "shared"
    (own / "partials").mkdir(parents=True)
    shared.mkdir()
    links = (ROOT / "templates" / "partials" / "links.html.j2").read_text()
    (own / "partials" / "links.html.j2").write_text(links.replace("<a ", '<a data-own="1" '))
    text = (ROOT / "templates" / "digest.txt.j2").read_text()
    (own / "digest.txt.j2").write_text("FROM THE LIST'S FOLDER\n" + text)
    (shared / "digest.txt.j2").write_text("FROM THE SHARED FOLDER\n" + text)
    (shared / "base.css").write_text(
        (ROOT / "templates" / "base.css").read_text() + ".blurb { letter-spacing: 1px; }\n"
    )
    env = make_environment(shared, own)
    rendered = render_edition(golden_edition(newsletter), newsletter, lst, env)
    assert rendered.text.startswith("FROM THE LIST'S FOLDER")
    assert 'data-own="1"' in rendered.html  # the list's partial
    assert "letter-spacing:1px" in rendered.html.replace(" ", "")  # the shared base.css
    assert 'class="items"' in rendered.html  # the bundled section partial
    # Without the list's folder, the shared one still overrides the bundled files.
    shared_only = render_edition(
        golden_edition(newsletter), newsletter, lst, make_environment(shared)
    )
    assert shared_only.text.startswith("FROM THE SHARED FOLDER")


def _folder_config(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "templates" / "daily"
    return list_config(tmp_path, templates="templates/daily"), folder


def test_a_list_folder_is_relative_to_the_definition_and_used_by_preview(
    monkeypatch, tmp_path, db_url
):
    path, folder = _folder_config(tmp_path)
    folder.mkdir(parents=True)
    text = (ROOT / "templates" / "digest.txt.j2").read_text()
    (folder / "digest.txt.j2").write_text("DAILY'S OWN TEXT\n" + text)
    assert load_newsletter(path).get_list("daily").templates == folder.resolve()
    set_settings(monkeypatch, sample_settings(db_url, DIGEST_CONFIG=str(path)))
    load_sample()
    run("preview", "--out", str(tmp_path / "out"))
    assert (tmp_path / "out" / "digest.txt").read_text().startswith("DAILY'S OWN TEXT")
    assert 'class="items"' in (tmp_path / "out" / "digest.html").read_text()
    result = run("check")
    assert "templates" not in result.output


def test_digest_check_reports_a_missing_list_folder(monkeypatch, tmp_path, db_url):
    path, folder = _folder_config(tmp_path)
    set_settings(monkeypatch, sample_settings(db_url, DIGEST_CONFIG=str(path)))
    load_sample()
    result = run("check", code=ExitCode.CHECK)
    assert (
        f"error: lists.daily.templates: templates folder {folder} does not exist" in result.output
    )


def test_digest_check_names_a_list_template_that_fails(monkeypatch, tmp_path, db_url):
    path, folder = _folder_config(tmp_path)
    (folder / "partials").mkdir(parents=True)
    set_settings(monkeypatch, sample_settings(db_url, DIGEST_CONFIG=str(path)))
    load_sample()
    # A syntax error: found by reading the folder, with the file and line.
    (folder / "partials" / "section.html.j2").write_text("{% if %}\n")
    result = run("check", code=ExitCode.CHECK)
    assert "lists.daily.templates: partials/section.html.j2:1 does not parse" in result.output
    # One that parses but fails as it renders: the compose error, with the file.
    (folder / "partials" / "section.html.j2").write_text("{{ section.no_such_thing.title }}\n")
    result = run("check", code=ExitCode.CHECK)
    found = [line for line in result.output.splitlines() if "[templates]" in line]
    assert len(found) == 1 and "section.html.j2" in found[0] and "failed" in found[0], found
    assert html.escape("no_such_thing") in found[0]
    assert re.search(r"error: lists\.daily\.templates: template \S*section\.html\.j2:\d+", found[0])


def test_the_studio_watches_a_lists_template_folder(monkeypatch, tmp_path, db_url):
    from digest.studio import Studio

    path, folder = _folder_config(tmp_path)
    folder.mkdir(parents=True)
    set_settings(monkeypatch, sample_settings(db_url, DIGEST_CONFIG=str(path)))
    studio = Studio()
    assert folder.resolve() in studio.watched()
    before = studio.files_version()
    (folder / "head.css").write_text("/* changed */\n")
    assert studio.files_version() != before


def test_a_headline_without_a_blurb_has_its_also_line_below_it(newsletter, lst):
    edition = make_edition(newsletter, per_section=2)
    first = edition.sections[0]
    bare = article(first.slug, 1, summary="")
    other = article(first.slug, 9, url="https://other.example/the-same-story.html")
    section = Section(first.slug, first.title, (first.articles[0], bare), {bare.key: (other,)})
    rendered = render_edition(edition, newsletter, lst, make_environment(), (section,))
    cell = lxml_html.fromstring(rendered.html).xpath("//td[@class='item-text']")[0]
    assert [child.tag for child in cell] == ["a", "br", "span"]
    assert "other.example" in cell.xpath("span")[0].text_content()
