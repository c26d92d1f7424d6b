"""Composition: rendering, CSS inlining, MIME encoding and per-recipient personalization."""

from __future__ import annotations

import html
import os
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import pytest
from lxml import html as lxml_html

from digest.audience.tokens import edition_token, make_token, read_token
from digest.compose import (
    HTML_BUDGET,
    PREFERENCES_URL,
    RECIPIENT_EMAIL,
    UNSUBSCRIBE_URL,
    VIEW_URL,
    Recipient,
    inline_css,
    make_environment,
    personalize,
    render,
)
from digest.errors import ComposeError
from digest.models import Edition, Section
from tests.support.editions import (
    BASE,
    article,
    bodies,
    compose,
    golden_edition,
    long_edition,
    make_edition,
    parse,
    render_edition,
)
from tests.support.values import NOW, ROOT, SECRET_BYTES

GOLDEN = Path(__file__).resolve().parent / "golden"
# Read at import: the autouse fixture clears DIGEST_* variables before each test runs.
UPDATE_GOLDEN = os.environ.get("DIGEST_UPDATE_GOLDEN") == "1"


@pytest.fixture
def env():
    return make_environment()


@pytest.fixture
def edition(newsletter):
    return make_edition(newsletter)


def urls_for(sid: int, list_name: str = "daily") -> dict[str, str]:
    return {
        UNSUBSCRIBE_URL: f"{BASE}/u/{make_token(SECRET_BYTES, sid, list_name, 'unsubscribe')}",
        PREFERENCES_URL: f"{BASE}/p/{make_token(SECRET_BYTES, sid, list_name, 'preferences')}",
        VIEW_URL: f"{BASE}/e/2026-11-26/{edition_token(SECRET_BYTES, list_name, '2026-11-26')}",
    }


# --- the message as a whole -------------------------------------------------------------


def test_message_is_multipart_alternative_text_first_html_last(edition, newsletter, lst, env):
    _, template = compose(edition, newsletter, lst, env)
    message = parse(
        personalize(template, Recipient(1, "reader@example.com"), secret=SECRET_BYTES).raw
    )
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert not message.defects and not any(p.defects for p in parts)


def test_personalize_equals_a_full_email_message_build(edition, newsletter, lst, env):
    rendered, template = compose(edition, newsletter, lst, env)
    email = (
        "a.very.long.local.part.for.testing.line.lengths.0123456789abcdef"
        "@mail.subdomain.of-a-rather-long-domain-name.example.com"
    )
    recipient = Recipient(123456789, email, "Zoë Ñúñez-Øberg 王小明")
    ours = parse(personalize(template, recipient, secret=SECRET_BYTES).raw)

    values = {**urls_for(recipient.subscriber_id), RECIPIENT_EMAIL: email}
    text, page = rendered.text, rendered.html
    for placeholder, value in values.items():
        text, page = text.replace(placeholder, value), page.replace(placeholder, html.escape(value))
    token = make_token(SECRET_BYTES, recipient.subscriber_id, "daily", "unsubscribe")
    ref = EmailMessage(policy=policy.SMTP)
    ref["Date"] = NOW
    ref["From"] = lst.sender
    ref["Reply-To"] = lst.reply_to
    ref["To"] = Address(display_name=recipient.name, addr_spec=email)
    ref["Subject"] = rendered.subject
    ref["Message-ID"] = ours["Message-ID"]
    ref["List-Id"] = f"{lst.title} <daily.orbital-dispatch.example>"
    ref["List-Unsubscribe"] = (
        f"<{BASE}/u/{token}>, "
        f"<mailto:unsubscribe@orbital-dispatch.example?subject=unsubscribe%20{token}>"
    )
    ref["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    ref["Feedback-ID"] = "2026-11-26:daily:digest:orbital-dispatch.example"
    ref["Auto-Submitted"] = "auto-generated"
    ref["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    ref.set_content(text, charset="utf-8", cte="quoted-printable")
    ref.add_alternative(page, subtype="html", charset="utf-8", cte="quoted-printable")
    reference = parse(ref.as_bytes())

    assert sorted(ours.keys()) == sorted(reference.keys())
    for name in ("From", "Reply-To", "To"):
        assert ours[name].addresses == reference[name].addresses
    for name in ours:
        if name not in ("From", "Reply-To", "To", "Content-Type"):
            # The reference folds long lines (List-Unsubscribe among them): compare unfolded.
            assert " ".join(str(ours[name]).split()) == " ".join(str(reference[name]).split()), name
    assert ours["Date"].datetime == NOW
    assert ours.get_content_type() == reference.get_content_type()
    assert bodies(ours) == bodies(reference)
    assert read_token(SECRET_BYTES, token, "unsubscribe") == (123456789, "daily")


def test_every_line_ends_crlf_and_stays_short(edition, newsletter, lst, env):
    _, template = compose(edition, newsletter, lst, env)
    raw = personalize(
        template, Recipient(7, "x" * 60 + "@example.com", "Ünïcödé " * 12), secret=SECRET_BYTES
    ).raw
    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    head, body = raw.split(b"\r\n\r\n", 1)
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    assert all(
        len(line) <= 78 for line in head.split(b"\r\n") if not line.startswith(b"List-Unsubscribe:")
    )
    lines = body.split(b"\r\n")
    assert all(len(line) <= 76 for line in lines), max(lines, key=len)
    # Quoted-printable: plain ASCII only, and no whitespace left at the end of a line.
    assert body.isascii()
    assert not any(line.endswith((b" ", b"\t")) for line in lines)


def test_list_unsubscribe_is_one_unencoded_line(edition, newsletter, lst, env):
    _, template = compose(edition, newsletter, lst, env)
    raw = personalize(template, Recipient(99, "reader@example.com"), secret=SECRET_BYTES).raw
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    lines = [line for line in head.split("\r\n") if line.lower().startswith("list-unsubscribe:")]
    assert len(lines) == 1
    index = head.split("\r\n").index(lines[0])
    following = head.split("\r\n")[index + 1]
    assert not following.startswith((" ", "\t")), "List-Unsubscribe must not be folded"
    assert "=?" not in lines[0]
    match = re.fullmatch(r"List-Unsubscribe: <(https://[^>]+)>, <(mailto:[^>]+)>", lines[0])
    assert match, lines[0]
    token = match.group(1).rsplit("/u/", 1)[1]
    assert read_token(SECRET_BYTES, token, "unsubscribe") == (99, "daily")
    assert match.group(2).endswith(f"?subject=unsubscribe%20{token}")
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in head


def test_message_id_is_stable_per_subscriber_and_distinct_between_them(
    edition, newsletter, lst, env
):
    _, template = compose(edition, newsletter, lst, env)
    first = personalize(template, Recipient(5, "a@example.com"), secret=SECRET_BYTES)
    again = personalize(template, Recipient(5, "a@example.com"), secret=SECRET_BYTES)
    other = personalize(template, Recipient(6, "b@example.com"), secret=SECRET_BYTES)
    assert first.raw == again.raw
    assert first.message_id == again.message_id != other.message_id
    assert parse(first.raw)["Message-ID"] == first.message_id
    assert re.fullmatch(
        r"<2026-11-26\.daily\.5\.[0-9a-f]{12}@orbital-dispatch\.example>", first.message_id
    )
    assert (first.edition_id, first.subscriber_id, first.recipient, first.envelope_from) == (
        7,
        5,
        "a@example.com",
        "newsletter@orbital-dispatch.example",
    )


def test_no_header_injection_from_name_headline_or_address(newsletter, lst, env):
    edition = make_edition(newsletter, title="Breaking\r\nBcc: victim@example.net\r\n\r\nbody")
    _, template = compose(edition, newsletter, lst, env)
    raw = personalize(
        template,
        Recipient(5, "a@example.com", "Eve\r\nBcc: x@y.example\nCc: z@z"),
        secret=SECRET_BYTES,
    ).raw
    message = parse(raw)
    assert message["Bcc"] is None and message["Cc"] is None
    assert "\n" not in str(message["Subject"]) and "Bcc" in str(message["Subject"])
    assert message["To"].addresses[0].addr_spec == "a@example.com"
    with pytest.raises(ComposeError):
        personalize(
            template, Recipient(5, "a@example.com>\r\nBcc: x@y.example"), secret=SECRET_BYTES
        )


def test_non_ascii_subject_is_encoded_and_folded(newsletter, lst, env):
    title = "Überraschung in São Paulo: 東京の衛星打ち上げが成功 " * 3
    edition = make_edition(newsletter, title=title)
    rendered, template = compose(edition, newsletter, lst, env)
    raw = personalize(template, Recipient(5, "a@example.com"), secret=SECRET_BYTES).raw
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert str(parse(raw)["Subject"]) == rendered.subject
    assert (
        rendered.subject == f"Orbital Dispatch Daily, November 26, 2026: {' '.join(title.split())}"
    )


def test_text_and_html_values_are_substituted_escaped(edition, newsletter, lst, env):
    _, template = compose(edition, newsletter, lst, env)
    email = "o'brien+news&more@example.com"
    text, page = bodies(parse(personalize(template, Recipient(3, email), secret=SECRET_BYTES).raw))
    assert not any(
        p in text or p in page
        for p in (UNSUBSCRIBE_URL, PREFERENCES_URL, VIEW_URL, RECIPIENT_EMAIL)
    )
    assert email in text.splitlines()
    assert html.escape(email) in page
    for url in urls_for(3).values():
        assert url in text.splitlines()
        assert f'href="{url}"' in page


# --- rendering ------------------------------------------------------------------------


def test_text_part_is_wrapped_and_every_url_is_whole_on_its_line(newsletter, lst, env):
    edition = make_edition(
        newsletter,
        summary="Lorem ipsum dolor sit amet, " * 30,
        url="https://news.orbital-dispatch.example/a/very/long/path/" + "x" * 90,
    )
    _, template = compose(edition, newsletter, lst, env)
    text, _ = bodies(
        parse(personalize(template, Recipient(1, "r@example.com"), secret=SECRET_BYTES).raw)
    )
    lines = text.splitlines()
    long_lines = [line for line in lines if len(line) > 78]
    assert long_lines and all(re.fullmatch(r"https?://\S+", line) for line in long_lines)
    for section in edition.sections:
        for item in section.articles:
            assert item.url in lines
    assert lst.postal_address in text.replace("\n", " ")


def test_html_holds_only_the_given_sections(edition, newsletter, lst, env):
    chosen = edition.for_sections(frozenset({"drone-space", "launch-pad"}))
    rendered, _ = compose(edition, newsletter, lst, env, sections=chosen)
    assert rendered.section_slugs == ("drone-space", "launch-pad")
    for section in edition.sections:
        present = section.slug in rendered.section_slugs
        for item in section.articles:
            assert (item.url in rendered.html) is present
            assert (item.url in rendered.text) is present
        assert (f">{section.title}</h2>" in rendered.html) is present


def test_subject_and_preheader(edition, newsletter, lst, env):
    rendered, _ = compose(edition, newsletter, lst, env)
    lead = edition.sections[0].articles[0].title
    assert rendered.subject == f"Orbital Dispatch Daily, November 26, 2026: {lead}"
    assert 40 <= len(rendered.preheader) <= 150
    assert rendered.preheader.startswith(lead)
    french = lst.model_copy(update={"locale": "fr", "subject": "{date} — {title}"})
    rendered = render(
        edition, edition.sections, newsletter=newsletter, lst=french, base_url=BASE, env=env
    )
    assert rendered.subject == "26 novembre 2026 — Orbital Dispatch Daily"
    assert '<html lang="fr" dir="ltr"' in rendered.html


def test_short_preheader_is_padded_to_forty_characters(newsletter, lst, env):
    edition = make_edition(newsletter, per_section=1, title="Hi")
    one = edition.sections[:1]
    rendered = render(edition, one, newsletter=newsletter, lst=lst, base_url=BASE, env=env)
    assert 40 <= len(rendered.preheader) <= 150


def test_right_to_left_locale_sets_dir(edition, newsletter, lst, env):
    arabic = lst.model_copy(update={"locale": "ar"})
    rendered = render(
        edition, edition.sections, newsletter=newsletter, lst=arabic, base_url=BASE, env=env
    )
    assert '<html lang="ar" dir="rtl"' in rendered.html
    assert 'role="article"' in rendered.html and 'dir="rtl"' in rendered.html


def test_subject_pattern_cannot_reach_attributes(edition, newsletter, lst, env):
    sneaky = lst.model_copy(update={"subject": "{title.__class__}"})
    with pytest.raises(ComposeError, match="unknown field"):
        render(edition, edition.sections, newsletter=newsletter, lst=sneaky, base_url=BASE, env=env)


def test_content_is_escaped_and_cannot_forge_placeholders(newsletter, lst, env):
    edition = make_edition(
        newsletter,
        title=f"<script>alert(1)</script> {UNSUBSCRIBE_URL}",
        summary=f"Mail {RECIPIENT_EMAIL} now",
        url="javascript:alert(1)",
    )
    rendered, template = compose(edition, newsletter, lst, env)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "javascript:" not in rendered.html and "javascript:" not in rendered.text
    text, page = bodies(
        parse(personalize(template, Recipient(1, "r@example.com"), secret=SECRET_BYTES).raw)
    )
    unsubscribe = urls_for(1)[UNSUBSCRIBE_URL]
    assert text.count(unsubscribe) == 1  # the footer's, not the headline's
    assert page.count(unsubscribe) == 1
    assert "Mail r@example.com now" not in text


def test_lead_details_and_image(newsletter, lst, env):
    edition = make_edition(
        newsletter,
        dateline="Seoul (AFP) Nov 3, 2025",
        byline="Kim Ji-won",
        image="https://img.orbital-dispatch.example/lead.jpg",
    )
    rendered, _ = compose(edition, newsletter, lst, env)
    doc = lxml_html.fromstring(rendered.html)
    images = doc.xpath("//img")
    assert len(images) == len(edition.sections)
    for image in images:
        assert image.get("src") == "https://img.orbital-dispatch.example/lead.jpg"
        assert image.get("alt") and image.get("width") == "552"
    assert "Seoul (AFP) Nov 3, 2025 · By Kim Ji-won" in rendered.html
    assert "Seoul (AFP) Nov 3, 2025 · By Kim Ji-won" in rendered.text
    buttons = doc.xpath("//a[@class='button']")
    assert [b.get("aria-label") for b in buttons] == [
        f"Read more: {s.articles[0].title}" for s in edition.sections
    ]
    insecure = make_edition(newsletter, image="http://img.example/lead.jpg")
    assert "<img" not in compose(insecure, newsletter, lst, env)[0].html


def test_dateline_falls_back_to_publication_date_in_list_time_zone(newsletter, lst, env):
    edition = make_edition(
        newsletter, dateline=None, published_at=datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    )
    rendered, _ = compose(edition, newsletter, lst, env)
    assert "Nov 25, 2026" in rendered.html  # 22:00 the day before in America/New_York


def test_html_structure(edition, newsletter, lst, env):
    rendered, _ = compose(edition, newsletter, lst, env)
    page = rendered.html
    assert page.startswith("<!DOCTYPE html>")
    doc = lxml_html.fromstring(page)
    assert doc.xpath("//meta[@charset='utf-8']") and doc.xpath("//meta[@name='viewport']")
    assert doc.xpath("//meta[@name='color-scheme']/@content") == ["light dark"]
    assert doc.xpath("//title/text()") == [rendered.subject]
    assert all(t.get("role") == "presentation" for t in doc.xpath("//table"))
    first = doc.xpath("//body/*")[0]
    assert "preheader" in first.get("class") and "display:none" in first.get("style")
    assert rendered.preheader in first.text_content()
    footer = doc.xpath("//td[@class='footer']")[0]
    hrefs = footer.xpath(".//a/@href")
    assert UNSUBSCRIBE_URL in hrefs and PREFERENCES_URL in hrefs and lst.privacy_url in hrefs
    assert lst.postal_address in footer.text_content()
    assert VIEW_URL in doc.xpath("//td[@class='header']//a/@href")
    assert (
        "<!--[if mso]>" in page and '<table role="presentation" align="center" width="600"' in page
    )
    assert all(len(c) == 7 for c in re.findall(r"#[0-9a-fA-F]+\b", page))


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _style(element, name: str) -> str | None:
    match = re.search(rf"(?:^|;)\s*{name}\s*:\s*(#[0-9a-fA-F]{{6}})", element.get("style") or "")
    return match.group(1) if match else None


def test_text_contrast_is_at_least_4_5_to_1(edition, newsletter, lst, env):
    rendered, _ = compose(edition, newsletter, lst, env)
    doc = lxml_html.fromstring(rendered.html)
    checked = 0
    for element in doc.iter():
        colour = _style(element, "color") if isinstance(element.tag, str) else None
        if not colour or "preheader" in (element.get("class") or ""):
            continue
        background = next(
            (b for b in (_style(a, "background-color") for a in element.iterancestors()) if b),
            "#ffffff",
        )
        if element.get("class") == "button":
            background = _style(element, "background-color")
        light, dark = sorted((_luminance(colour), _luminance(background)), reverse=True)
        assert (light + 0.05) / (dark + 0.05) >= 4.5, (element.get("class"), colour, background)
        checked += 1
    assert checked > 20


@pytest.mark.parametrize("layout", ["rich", "compact"])
def test_html_stays_under_budget_for_a_big_edition(newsletter, lst, env, layout):
    lst = lst.model_copy(update={"layout": layout})
    edition = make_edition(
        newsletter,
        per_section=6,
        image="https://img.orbital-dispatch.example/" + "i" * 100 + ".jpg",
    )
    big = tuple(
        Section(
            s.slug,
            s.title * 3,
            tuple(
                article(
                    s.slug,
                    n,
                    title="A long headline about orbital matters " * 4,
                    summary="Summary sentence with plenty of words in it. " * 20,
                    dateline="Washington (AFP) Nov 25, 2026",
                    byline="A. Reporter",
                    url=f"https://news.orbital-dispatch.example/{s.slug}/{'p' * 80}/{n}.html",
                )
                for n in range(6)
            ),
        )
        for s in edition.sections
    )
    rendered = render(edition, big, newsletter=newsletter, lst=lst, base_url=BASE, env=env)
    assert len(rendered.html.encode()) < 90_000
    for section in big:
        assert all(a.url in rendered.html and a.url in rendered.text for a in section.articles)


def oversized(sections: int, per_section: int) -> tuple[Edition, tuple[Section, ...]]:
    long = "Summary sentence with plenty of words in it. " * 40
    chosen = tuple(
        Section(
            f"s{i}",
            f"Section {i}",
            tuple(
                article(f"s{i}", n, title="Headline about orbital matters " * 6, summary=long)
                for n in range(per_section)
            ),
        )
        for i in range(sections)
    )
    return Edition("daily", "2026-11-26", NOW, chosen, id=1), chosen


def test_an_edition_too_big_to_fit_is_trimmed_the_same_in_both_parts(newsletter, lst, env):
    edition, sections = oversized(14, 16)
    rendered = render(edition, sections, newsletter=newsletter, lst=lst, base_url=BASE, env=env)
    assert len(rendered.html.encode()) <= HTML_BUDGET
    dropped = [a.url for s in sections for a in s.articles if a.url not in rendered.html]
    assert dropped and all(url not in rendered.text for url in dropped)
    kept = [a.url for s in sections for a in s.articles if a.url in rendered.html]
    assert all(url in rendered.text for url in kept)
    # Every lead stays; only further headlines went, and the notes say how many.
    assert all(s.articles[0].url in rendered.html for s in sections)
    assert any(f"{len(dropped)} further headlines left out" in n for n in rendered.notes)
    # The footer is never cut.
    for body in (rendered.html, rendered.text):
        assert UNSUBSCRIBE_URL in body and PREFERENCES_URL in body
        assert lst.postal_address in " ".join(body.split())


def test_trimming_drops_headlines_before_it_shortens_summaries(newsletter, lst, env):
    # The compact layout's steps, one by one (a rich edition this big goes further, its
    # blurbs taking room: the budget test below covers it).
    lst = lst.model_copy(update={"layout": "compact"})
    edition, sections = oversized(14, 16)
    rendered = render(edition, sections, newsletter=newsletter, lst=lst, base_url=BASE, env=env)
    assert len(rendered.notes) == 1 and "headlines" in rendered.notes[0]
    assert "summaries" not in " ".join(rendered.notes)
    edition, sections = oversized(30, 6)
    rendered = render(edition, sections, newsletter=newsletter, lst=lst, base_url=BASE, env=env)
    assert len(rendered.html.encode()) <= HTML_BUDGET
    assert any("headlines left out (2 kept per section)" in n for n in rendered.notes)
    assert any(
        "lead summaries shortened to" in n or "lead summaries left out" in n for n in rendered.notes
    )


def test_an_edition_that_fits_says_nothing_was_trimmed(edition, newsletter, lst, env):
    rendered, _ = compose(edition, newsletter, lst, env)
    assert rendered.notes == ()


@pytest.mark.parametrize("layout", ["rich", "compact"])
def test_the_8x8_long_edition_fits_whole_and_passes_check(newsletter, lst, env, layout):
    from digest.compose.check import check, errors

    edition = long_edition()
    lst = lst.model_copy(update={"layout": layout})
    rendered, template = compose(edition, newsletter, lst, env)
    assert len(rendered.html.encode()) <= HTML_BUDGET == 90_000
    assert rendered.notes == ()
    for section in edition.sections:
        assert all(a.url in rendered.html and a.url in rendered.text for a in section.articles)
    raw = personalize(template, Recipient(1, "reader@example.com"), secret=SECRET_BYTES).raw
    assert errors(check(raw)) == []


def test_empty_edition_is_refused(newsletter, lst, env):
    edition = Edition("daily", "2026-11-26", NOW, (Section("x", "X", ()),), id=1)
    with pytest.raises(ComposeError, match="no articles"):
        render(edition, edition.sections, newsletter=newsletter, lst=lst, base_url=BASE, env=env)


# --- templates ------------------------------------------------------------------------


def test_user_templates_override_the_defaults(tmp_path, edition, newsletter, lst):
    (tmp_path / "digest.txt.j2").write_text("Custom {{ list.title }}\n{{ urls.unsubscribe }}\n")
    rendered = render_edition(edition, newsletter, lst, make_environment(tmp_path))
    assert rendered.text == f"Custom {lst.title}\n{UNSUBSCRIBE_URL}\n"
    assert "<!DOCTYPE html>" in rendered.html


def test_template_errors_are_compose_errors(tmp_path, edition, newsletter, lst):
    (tmp_path / "digest.txt.j2").write_text("{{ no_such_value }}\n")
    with pytest.raises(ComposeError, match=r"digest\.txt\.j2"):
        render_edition(edition, newsletter, lst, make_environment(tmp_path))


def test_autoescape_is_on_for_html_templates_only(newsletter, lst, env):
    links = env.get_template("partials/links.html.j2").module
    assert links.link("https://a.example/?a=1&b=2", "<b>", "c") == (
        '<a class="c" href="https://a.example/?a=1&amp;b=2">&lt;b&gt;</a>'
    )
    edition = make_edition(newsletter, title="Rock & <Roll>")
    rendered, _ = compose(edition, newsletter, lst, env)
    assert "Rock &amp; &lt;Roll&gt;" in rendered.html
    assert "Rock & <Roll>" in rendered.text.splitlines()


# --- inline_css: premailer's pitfalls -------------------------------------------------

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>t</title>
<style>@media (prefers-color-scheme: dark) { .x { color: #eeeeee !important; } }
@media screen and (max-width: 600px) { .x { width: 100% !important; } }
[data-ogsc] .x { color: #eeeeee !important; }</style>
<link rel="stylesheet" href="http://127.0.0.1:9/remote.css">
</head><body>
<!--[if mso]><table role="presentation" width="600"><tr><td><![endif]-->
<p class="x">Hello</p><img class="i" src="https://a.example/i.png" width="552" alt="">
<!--[if mso]></td></tr></table><![endif]-->
</body></html>"""
CSS = (
    ".x { color: #111111; background-color: #FFFFFF; mso-line-height-rule: exactly; "
    "-webkit-text-size-adjust: 100%; bogus-property: 3; } .i { width: 100%; height: auto; }"
    " .broken { color: ; }"
)


def test_inline_css_applies_the_css_with_six_digit_colours():
    out = inline_css(PAGE, CSS)
    assert re.search(r'<p class="x" style="[^"]*color:#111111', out)
    assert "#111;" not in out and '#111"' not in out
    assert "mso-line-height-rule:exactly" in out


def test_inline_css_keeps_head_rules_and_important_verbatim():
    out = inline_css(PAGE, CSS)
    assert "@media (prefers-color-scheme: dark) { .x { color: #eeeeee !important; } }" in out
    assert "@media screen and (max-width: 600px) { .x { width: 100% !important; } }" in out
    assert "[data-ogsc] .x { color: #eeeeee !important; }" in out
    assert ".x { color: #111111" not in out  # the inlined CSS is not copied into <head>


def test_inline_css_keeps_mso_conditional_comments_and_doctype():
    out = inline_css(PAGE, CSS)
    assert out.startswith("<!DOCTYPE html>")
    assert '<!--[if mso]><table role="presentation" width="600"><tr><td><![endif]-->' in out
    assert "<!--[if mso]></td></tr></table><![endif]-->" in out


def test_inline_css_keeps_template_width_attributes():
    out = inline_css(PAGE, CSS)
    assert re.search(r'<img class="i"[^>]* width="552"', out)
    assert 'height="auto"' not in out


def test_inline_css_never_uses_the_network(monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network use in a pure function")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    inline_css(PAGE + '<style>@import url("http://127.0.0.1:9/x.css");</style>', CSS)
    assert attempts == []


def test_inline_css_sets_the_colour_preference_on_every_call():
    import cssutils

    cssutils.ser.prefs.minimizeColorHash = True  # as a fresh process (or another caller) has it
    assert "#111111" in inline_css(PAGE, CSS)


def test_inline_css_writes_nothing_to_stderr_in_a_fresh_process():
    # cssutils' own handler holds the stderr of import time, out of capfd's reach.
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); from tests.test_compose import PAGE, CSS;"
        "from digest.compose import inline_css; print(len(inline_css(PAGE, CSS)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout.strip().isdigit()
    assert result.stderr == ""


# --- golden ---------------------------------------------------------------------------


def _normalize(raw: str) -> str:
    raw = re.sub(r"=_digest_[0-9a-f]+", "=_digest_BOUNDARY", raw.replace("\r\n", "\n"))
    raw = re.sub(r"(?m)^Date: .*$", "Date: DATE", raw)
    return re.sub(r"(?m)^Message-ID: <[^>]+>$", "Message-ID: <MESSAGE-ID>", raw)


@pytest.mark.parametrize("layout", ["compact", "rich"])
def test_golden_email(newsletter, lst, env, layout):
    """The compact layout's golden files are the email as it was before layouts existed."""
    edition = golden_edition(newsletter)
    lst = lst.model_copy(update={"layout": layout})
    _, template = compose(edition, newsletter, lst, env)
    message = personalize(
        template, Recipient(1001, "zoe@example.org", "Zoë Ribeiro"), secret=SECRET_BYTES
    )
    text, page = bodies(parse(message.raw))
    stem = "daily" if layout == "compact" else f"daily-{layout}"
    produced = {
        f"{stem}.eml": _normalize(message.raw.decode("ascii")),
        f"{stem}.txt": text,
        f"{stem}.html": page,
    }
    if UPDATE_GOLDEN:
        GOLDEN.mkdir(exist_ok=True)
        for name, content in produced.items():
            (GOLDEN / name).write_text(content, encoding="utf-8", newline="\n")
    for name, content in produced.items():
        expected = (GOLDEN / name).read_text(encoding="utf-8")
        assert content == expected, (
            f"{name} differs from tests/golden; if the change is intended, rerun with "
            "DIGEST_UPDATE_GOLDEN=1 and review the diff"
        )


def test_outlook_only_markup_survives_rendering_and_inlining(edition, newsletter, lst, env):
    rendered, _ = compose(edition, newsletter, lst, env)
    page = rendered.html
    assert (
        "<!--[if mso]><style>table, td, h1, h2, h3, p, li, a { font-family: Arial, "
        "Helvetica, sans-serif !important; }</style><![endif]-->"
    ) in page
    assert "<o:PixelsPerInch>96</o:PixelsPerInch>" in page
    assert 'xmlns:o="urn:schemas-microsoft-com:office:office"' in page
    assert page.count("<!--[if mso]>") == 4 and page.count("<![endif]-->") == 4


def test_an_in_this_edition_line_names_each_section_with_its_count_in_both_parts(
    newsletter, lst, env, edition
):
    rendered = render_edition(edition, newsletter, lst, env)
    counts = [f"{s.title} ({len(s.articles)})" for s in edition.sections]
    line = "In this edition: " + " · ".join(counts)
    assert line in html.unescape(re.sub(r"<[^>]+>", "", rendered.html))
    assert line in " ".join(rendered.text.split())
    fewer = render_edition(edition, newsletter, lst, env, edition.sections[:1])
    assert f"In this edition: {counts[0]}\n" in fewer.text


def test_the_header_names_the_list_once_when_its_title_is_the_newsletters_name(
    newsletter, lst, env, edition
):
    def meta(rendered) -> str:
        return lxml_html.fromstring(rendered.html).xpath("//p[@class='meta']")[0].text_content()

    assert meta(render_edition(edition, newsletter, lst, env)).startswith(lst.title + " · ")
    same = lst.model_copy(update={"title": newsletter.name.upper()})
    header = meta(render_edition(edition, newsletter, same, env))
    assert newsletter.name.casefold() not in header.casefold()
