"""digest check: a good message passes clean; each kind of fault is found, with what and where."""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from digest.compose import Recipient, make_environment, personalize, qp
from digest.compose.check import STYLE_BUDGET, check, errors
from digest.compose.styles import Styles, contrast, dark_rules, parse_colour
from tests.support.editions import compose, make_edition
from tests.support.values import ROOT, SECRET_BYTES


@pytest.fixture(scope="module")
def good(newsletter_module) -> bytes:
    newsletter, lst = newsletter_module
    edition = make_edition(
        newsletter,
        image="https://img.orbital-dispatch.example/lead.jpg",
        dateline="Seoul (AFP) Nov 3, 2025",
        byline="Kim Ji-won",
    )
    _, template = compose(edition, newsletter, lst, make_environment())
    return personalize(
        template, Recipient(5, "reader@example.com", "Reader"), secret=SECRET_BYTES
    ).raw


@pytest.fixture(scope="module")
def newsletter_module():

    from digest.config import load_newsletter

    newsletter = load_newsletter(ROOT / "digest.toml")
    return newsletter, newsletter.get_list("daily")


def parts(raw: bytes) -> tuple[dict[str, str], str, str]:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    headers = {}
    for line in re.sub(r"\r\n[ \t]", " ", head).split("\r\n"):
        name, _, value = line.partition(": ")
        headers[name] = value
    plain, page = (p.get_content() for p in message.iter_parts())
    return headers, plain, page


def rebuild(raw: bytes, *, html=None, text=None, headers=None) -> bytes:
    """The message with its HTML, text or headers changed, its bodies re-encoded."""
    old_headers, plain, page = parts(raw)
    chosen = old_headers if headers is None else headers(old_headers)
    head = "".join(
        f"{name}: {value}\r\n"
        for name, value in chosen.items()
        if not name.lower().startswith("content-")
    )
    boundary = "=_test_boundary"
    out = [head, f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n']
    for subtype, body in (
        ("plain", plain if text is None else text(plain)),
        ("html", page if html is None else html(page)),
    ):
        out.append(
            f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
        out.append(qp.encode(body.replace("\r\n", "\n"), soft_end=False).decode() + "\r\n")
    out.append(f"--{boundary}--\r\n")
    return "".join(out).encode("ascii")


def codes(raw: bytes, severity: str = "error") -> set[str]:
    return {f.code for f in check(raw) if f.severity == severity}


def test_the_composed_message_passes_without_errors_or_warnings(good):
    assert check(good) == []


def test_rebuilding_alone_changes_nothing(good):
    assert errors(check(rebuild(good))) == []


def sub(pattern: str, repl: str, count: int = 0):
    return lambda page: re.sub(pattern, repl, page, count=count)


HTML_FAULTS = [
    (sub(r"<!DOCTYPE html>", ""), "doctype"),
    (sub(r'<html lang="en"', "<html"), "html-lang"),
    (sub(r' dir="ltr"', "", 1), "html-dir"),
    (sub(r"<title>.*?</title>", "<title></title>"), "title"),
    (sub(r'<meta charset="utf-8">', ""), "meta-charset"),
    (sub(r'<meta name="viewport"[^>]*>', ""), "meta-viewport"),
    (
        sub(r'<table role="presentation" class="container"', '<table class="container"'),
        "table-role",
    ),
    (sub(r"</body>", "<script>alert(1)</script></body>"), "forbidden"),
    (
        sub(r"</body>", '<form action="https://x.example/"><input name="q"></form></body>'),
        "forbidden",
    ),
    (
        sub(r"</head>", '<link rel="stylesheet" href="https://x.example/a.css"></head>'),
        "external-css",
    ),
    (sub(r"</body>", "<style>.x { color: #000000; }</style></body>"), "style-in-body"),
    (sub(r"</head>", "<style>/*" + "x" * STYLE_BUDGET + "*/</style></head>"), "style-size"),
    (sub(r'src="https://img', 'src="http://img', 1), "img-src"),
    (sub(r'(<img[^>]*) alt="[^"]*"', r"\1", 1), "img-alt"),
    (sub(r'(<img[^>]*) width="552"', r"\1", 1), "img-width"),
    (sub(r'href="https://news\.orbital-dispatch\.example/', 'href="/', 1), "link-href"),
    (sub(r"</body>", '<a href="https://x.example/"> </a></body>'), "link-text"),
    (sub(r"color:#57606a", "color:#aaaaaa"), "contrast"),
    (
        sub(
            r"\.dateline, \.footer-text \{ color: #b4b9bf",
            ".dateline, .footer-text { color: #444444",
        ),
        "contrast",
    ),
    (sub(r"</body>", "<!-- " + "x" * 90_000 + " --></body>"), "html-size"),
    (
        sub(r"https://news\.orbital-dispatch\.example/e/[^\"]+", "__digest_view_url__", 1),
        "placeholder",
    ),
]


@pytest.mark.parametrize("fault,code", HTML_FAULTS, ids=[c for _, c in HTML_FAULTS])
def test_each_html_fault_is_an_error(good, fault, code):
    page = parts(good)[2]
    assert fault(page) != page, "the fault did not apply: the test is stale"
    assert code in codes(rebuild(good, html=fault))


def test_findings_say_what_and_where(good):
    findings = check(rebuild(good, html=sub(r"color:#57606a", "color:#aaaaaa")))
    finding = next(f for f in findings if f.code == "contrast")
    assert re.fullmatch(r"html line \d+: <p\.dateline>", finding.where)
    assert "#aaaaaa on #ffffff" in finding.what and "light mode" in finding.what
    assert str(finding).startswith("error: html line ")
    line = int(finding.where.split()[2].rstrip(":"))
    assert 'class="dateline"' in parts(good)[2].split("\n")[line - 1]


def test_dark_mode_contrast_is_measured_against_the_dark_background(good):
    dark = sub(
        r"\.dateline, \.footer-text \{ color: #b4b9bf", ".dateline, .footer-text { color: #444444"
    )
    finding = next(f for f in check(rebuild(good, html=dark)) if f.code == "contrast")
    assert "dark mode" in finding.what and "#444444 on #1e1e1e" in finding.what


def test_header_faults(good):
    def without(name):
        return lambda h: {k: v for k, v in h.items() if k != name}

    assert "header-count" in codes(rebuild(good, headers=without("List-Unsubscribe-Post")))
    assert "header-count" in codes(rebuild(good, headers=without("Message-ID")))
    head, body = good.split(b"\r\n\r\n", 1)
    doubled = head + b"\r\nSubject: again" + b"\r\n\r\n" + body
    assert any(f.code == "header-count" and f.where == "header Subject" for f in check(doubled))
    encoded = re.sub(rb"List-Unsubscribe: <[^\r]+", b"List-Unsubscribe: =?utf-8?q?x?=", good)
    assert {"header-encoded", "list-unsubscribe"} <= codes(encoded)
    plain_http = good.replace(b"List-Unsubscribe: <https://", b"List-Unsubscribe: <http://")
    assert "list-unsubscribe" in codes(plain_http)
    local = good.replace(
        b"List-Unsubscribe: <https://news.orbital-dispatch.example",
        b"List-Unsubscribe: <http://127.0.0.1:8000",
    )
    assert "list-unsubscribe" not in codes(local) and "list-unsubscribe" in codes(local, "warning")


def test_mime_faults(good):
    message = EmailMessage()
    message["Subject"] = "x"
    message.set_content("hello")
    assert "mime" in codes(message.as_bytes())
    swapped = BytesParser(policy=policy.default).parsebytes(good)
    swapped.set_payload(list(reversed(swapped.get_payload())))
    assert "mime" in codes(swapped.as_bytes())


def test_plain_text_findings(good):
    long_prose = rebuild(good, text=lambda t: t + "word " * 30 + "\n")
    assert "text-width" in codes(long_prose, "warning")
    assert errors(check(long_prose)) == []
    long_url = rebuild(good, text=lambda t: t + "https://x.example/" + "p" * 200 + "\n")
    assert "text-width" not in codes(long_url, "warning")
    lost = rebuild(
        good,
        text=lambda t: t.replace(
            "https://news.orbital-dispatch.example/drone-space/story-1.html", "(link)"
        ),
    )
    assert "text-twin" in codes(lost, "warning")
    huge = rebuild(good, text=lambda t: t + "x" * 1000 + "\n")
    assert "text-line" in codes(huge)


def test_colour_format_is_a_warning(good):
    short = rebuild(good, html=sub(r"color:#57606a", "color:#567", 1))
    assert "colour-format" in codes(short, "warning")


# -- the colour helpers ------------------------------------------------------------------


def test_contrast_matches_wcag_reference_values():
    assert contrast(parse_colour("#000000"), parse_colour("#ffffff")) == pytest.approx(21)
    assert contrast(parse_colour("#777777"), parse_colour("#ffffff")) == pytest.approx(4.48, 0.01)
    assert contrast(parse_colour("#767676"), parse_colour("white")) == pytest.approx(4.54, 0.01)
    assert parse_colour("#abc") == parse_colour("#aabbcc")
    assert parse_colour("rgb(255, 0, 0)") == (1.0, 0.0, 0.0)
    assert parse_colour("currentColor") is None


def test_dark_rules_come_only_from_dark_media_queries():
    css = (
        "/* c { } */ .a { color: #111111; } @media screen and (max-width: 600px) "
        "{ .b { color: #222222 !important; } } @media (prefers-color-scheme: dark) "
        "{ .c, .d { color: #eeeeee !important; background-color: #000000; } }"
    )
    rules = dark_rules(css)
    assert [s for s, _ in rules] == [".c", ".d"]
    assert rules[0][1] == {"color": ("#eeeeee", True), "background-color": ("#000000", False)}


def test_a_head_rule_beats_inline_style_only_when_important():
    from lxml import html

    doc = html.document_fromstring(
        "<html><head><style>@media (prefers-color-scheme: dark) { .a { color: #eeeeee !important; "
        "background-color: #000000; } .b { color: #dddddd; } }</style></head><body>"
        '<div class="a" style="color: #111111; background-color: #ffffff">'
        '<p class="b" style="color: #222222">x</p><p>y</p></div></body></html>'
    )
    styles = Styles(doc)
    a, b, plain = doc.xpath("//div")[0], doc.xpath("//p")[0], doc.xpath("//p")[1]
    assert styles.colour(a, "dark") == "#eeeeee" and styles.background(a, "dark") == "#ffffff"
    assert styles.colour(b, "dark") == "#222222"
    assert styles.colour(plain, "dark") == "#eeeeee" and styles.colour(plain, "light") == "#111111"


def test_also_links_stand_in_both_parts_and_check_finds_nothing_more(newsletter_module, good):
    from dataclasses import replace

    from tests.support.editions import article

    newsletter, lst = newsletter_module
    edition = make_edition(
        newsletter,
        image="https://img.orbital-dispatch.example/lead.jpg",
        dateline="Seoul (AFP) Nov 3, 2025",
        byline="Kim Ji-won",
    )
    first, second = edition.sections[0], edition.sections[0].articles[2]
    wire = article(first.slug, 40, url="https://www.wire.example/2025/11/03/launch-" + "x" * 70)
    other = article(first.slug, 41, url="https://other-daily.example/space/launch")
    section = replace(first, also={first.articles[0].key: (wire, other), second.key: (other,)})
    edition = replace(edition, sections=(section, *edition.sections[1:]))
    _, template = compose(edition, newsletter, lst, make_environment())
    raw = personalize(
        template, Recipient(5, "reader@example.com", "Reader"), secret=SECRET_BYTES
    ).raw
    _, plain, page = parts(raw)
    assert page.count('class="more-link also-link"') == 3
    assert ">wire.example</a>, <a" in page and ">other-daily.example</a>" in page
    lines = plain.splitlines()
    assert "Also: wire.example" in lines and wire.url in lines  # whole, on its own line
    assert "  Also: other-daily.example" in lines and lines.count(other.url) == 2
    assert {f.code for f in check(raw)} == {f.code for f in check(good)}
