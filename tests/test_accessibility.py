"""Accessibility: axe-core's WCAG 2.0 and 2.1 level A and AA rules, in headless chromium, over
every page a reader or an editor sees: the email's HTML part (per layout, locale, width and
colour scheme), every page of ``digest serve`` (sign-up, confirmation, unsubscribe,
preferences, the shared copy, the archive, the error pages), and the preview studio.

A violation of impact serious or critical fails the test, naming each rule, its impact, what
it asks and the elements it found; moderate and minor ones are printed (``pytest -rP`` shows
them) and do not fail (docs/decisions.md). One browser, one server and one studio serve every
case of the module. The email's screenshots go to build/screenshots/ (or
$DIGEST_SCREENSHOTS), named email-<layout>-<locale>-<width>-<scheme>.png.

To cover another layout or locale, add it to EMAIL_LAYOUTS (tests/support/editions.py) or
EMAIL_LOCALES.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from lxml import html as lxml_html

from digest import pipeline, studio
from digest.audience.tokens import edition_token, make_token
from digest.compose import Recipient, make_environment, personalize
from digest.config import load_newsletter
from digest.models import Curation, NewSubscriber
from tests.support.axe import audit, axe_or_skip, describe, failing, notices, open_audited
from tests.support.browser import SCREENSHOTS, Browser
from tests.support.cli import load_sample, run, sample_settings
from tests.support.editions import (
    EMAIL_LAYOUTS,
    article,
    bodies,
    compose,
    golden_edition,
    parse,
)
from tests.support.newsletters import two_list_config
from tests.support.values import ROOT, SECRET_BYTES
from tests.support.web import base_url, serving, uvicorn_running

# A list's locale sets the email's <html lang dir> and its dates (ar: right to left).
EMAIL_LOCALES = ("en", "de", "ar")
EMAIL_WIDTHS = (320, 600)
SCHEMES = ("light", "dark")
PAGE_WIDTH = 375  # the web pages, at a phone's width
STUDIO_WIDTH = 1024  # a laptop: the frames of each scheme scroll sideways
NOTE = (
    "A word from the editors: *three launches* this week, and "
    "[our guide](https://news.orbital-dispatch.example/guide)."
)


def assert_accessible(
    browser: Browser, axe: str, target: Path | str, width: int, scheme: str, *, then=None, shot=None
) -> str:
    """Audits ``target`` (after ``then``, an expression that loads the page to audit, if
    given): fails on serious and critical violations, prints the others. Returns the text of
    the page audited."""
    page = open_audited(browser, target, width, axe, dark=scheme == "dark")
    try:
        if then is not None:
            page.submit(then)
        found = audit(page)
        where = page.evaluate("location.pathname + location.search")
        text = page.evaluate("document.body.innerText")
        if shot is not None:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(SCREENSHOTS / shot)
    finally:
        page.close()
    if notices(found):
        print(describe(f"{where} ({width} px, {scheme}), not failing", notices(found)))
    assert not failing(found), describe(f"{where} ({width} px, {scheme})", failing(found))
    return text


@pytest.fixture(scope="module")
def axe() -> str:
    return axe_or_skip()


# -- the email ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Email:
    html: Path
    text: str


def list_for(lst, layout: str, locale: str):
    """The sample list in ``layout`` and ``locale``."""
    return lst.model_copy(update={"locale": locale, "layout": layout})


@pytest.fixture(scope="module")
def emails(tmp_path_factory) -> dict[tuple[str, str], Email]:
    """The golden edition, with an editor's note and another site's report of its lead story,
    as a reader receives it, per (layout, locale)."""
    newsletter = load_newsletter(ROOT / "digest.toml")
    edition = golden_edition(newsletter)
    first = edition.sections[0]
    wire = article(first.slug, 40, url="https://www.wire.example/2026/11/26/launch")
    edition = replace(
        edition,
        sections=(replace(first, also={first.articles[0].key: (wire,)}), *edition.sections[1:]),
        curation=Curation(note=NOTE),
    )
    folder = tmp_path_factory.mktemp("emails")
    made = {}
    for layout in EMAIL_LAYOUTS:
        for locale in EMAIL_LOCALES:
            lst = list_for(newsletter.get_list("daily"), layout, locale)
            _, template = compose(edition, newsletter, lst, make_environment())
            raw = personalize(template, Recipient(1, "reader@example.com"), secret=SECRET_BYTES).raw
            text, page = bodies(parse(raw))
            path = folder / f"{layout}-{locale}.html"
            path.write_text(page, encoding="utf-8")
            made[layout, locale] = Email(path, text)
    return made


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("width", EMAIL_WIDTHS)
@pytest.mark.parametrize("locale", EMAIL_LOCALES)
@pytest.mark.parametrize("layout", EMAIL_LAYOUTS)
def test_the_email_has_no_serious_accessibility_violation(
    browser, axe, emails, layout, locale, width, scheme
):
    assert_accessible(
        browser,
        axe,
        emails[layout, locale].html,
        width,
        scheme,
        shot=f"email-{layout}-{locale}-{width}-{scheme}.png",
    )
    assert (SCREENSHOTS / f"email-{layout}-{locale}-{width}-{scheme}.png").stat().st_size > 1000


@pytest.mark.parametrize("locale", EMAIL_LOCALES)
@pytest.mark.parametrize("layout", EMAIL_LAYOUTS)
def test_every_link_of_the_emails_html_stands_on_a_line_of_the_text_part(emails, layout, locale):
    email = emails[layout, locale]
    doc = lxml_html.document_fromstring(email.html.read_text(encoding="utf-8"))
    hrefs = set(doc.xpath("//body//a/@href"))
    lines = {line.strip() for line in email.text.splitlines()}
    assert len(hrefs) > 10 and all(h.startswith("https://") for h in hrefs)
    assert sorted(hrefs - lines) == []


def test_the_audit_fails_what_it_must_and_only_reports_the_rest(browser, axe, tmp_path):
    """An unlabelled field, an image without alt text and grey on white fail; a mismatched
    xml:lang (moderate) is only reported."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html lang="en" xml:lang="fr"><head><title>t</title></head><body><main>'
        '<input type="text"><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
        '<p style="color:#bbbbbb;background:#ffffff">faint</p></main></body></html>'
    )
    page = open_audited(browser, bad, 600, axe)
    try:
        found = audit(page)
    finally:
        page.close()
    assert {v.id for v in failing(found)} == {"label", "image-alt", "color-contrast"}
    assert [(v.id, v.impact) for v in notices(found)] == [("html-xml-lang-mismatch", "moderate")]
    contrast = next(v for v in found if v.id == "color-contrast")
    assert contrast.impact == "serious" and contrast.targets == ("p",)
    assert "\n  color-contrast (serious): " in describe("bad.html", found)


def test_without_axe_core_the_audits_skip_with_the_reason_and_fail_under_ci(monkeypatch):
    import tests.support.axe as support

    monkeypatch.setattr(support, "AXE_JS", Path("/nonexistent/axe.min.js"))
    monkeypatch.setattr(support.shutil, "which", lambda name: None)  # neither make nor npm
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="npm is missing"):
        axe_or_skip()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        axe_or_skip()


# -- digest serve ------------------------------------------------------------------------


@dataclass
class PublicSite:
    url: str
    ctx: pipeline.Context
    key: str  # the edition that was sent
    folder: Path

    def at(self, path: str) -> str:
        return f"{self.url}{path}"

    def reader(self, email: str) -> int:
        self.ctx.store.add_subscribers(
            [NewSubscriber(email=email, lists=("daily",))], datetime.now(UTC)
        )
        return self.ctx.store.subscriber(email).id

    def link(self, email: str, purpose: str) -> str:
        """The page of a new reader's ``purpose`` link (unsubscribe, preferences)."""
        return self.at(
            f"/{purpose[0]}/{make_token(SECRET_BYTES, self.reader(email), 'daily', purpose)}"
        )

    def confirm_link(self, email: str) -> str:
        """The confirmation page of a sign-up waiting for its confirmation."""
        request_id, _ = self.ctx.store.request_confirmation(
            email, "", "daily", None, datetime.now(UTC), None
        )
        return self.at(f"/c/{make_token(SECRET_BYTES, request_id, 'daily', 'confirm')}")


@pytest.fixture(scope="module")
def public_site(tmp_path_factory) -> Iterator[PublicSite]:
    """``digest serve``'s app on a real uvicorn, for a newsletter of two lists (so that the
    sign-up form offers a choice), on an SQLite file holding the sample articles and readers
    and the editions sent to them (into a Maildir). "daily" delivers at each reader's hour
    (from their midnight: due whenever the fixture runs), so its preferences page asks for
    the reader's time zone."""
    folder = tmp_path_factory.mktemp("public_site")
    db_url = f"sqlite:///{folder / 'digest.db'}"
    config = two_list_config(folder)
    text = config.read_text()
    config.write_text(text.replace('name = "daily"\n', 'name = "daily"\ndeliver_local = true\n', 1))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        for name, value in sample_settings(
            db_url, DIGEST_CONFIG=str(config), DIGEST_OUTBOX=str(folder / "outbox")
        ).items():
            patch.setenv(name, value)
        load_sample()
        run("send")
    with serving(folder, db_url, config) as served:
        index = served.http.get("/archive/daily/").text
        key = re.search(r'href="[^"]*/archive/daily/(\d{4}-\d\d-\d\d)"', index).group(1)
        yield PublicSite(served.url, served.ctx, key, folder)


SUBMIT = "document.querySelector('form').submit()"
CLICK = "document.querySelector('button[value={}]').click()"
# Sets the address and submits, skipping the browser's own check of it (the server's runs).
SIGN_UP = (
    "(() => {{ const f = document.querySelector('form[action^=\"/subscribe\"]');"
    " f.email.value = {!r}; f.submit(); }})()"
)
# Each page of digest serve, and words it shows (so that the page audited is the one meant).
PAGES = {
    "subscribe form": "Subscribe to Orbital Dispatch Daily",
    "subscribe form of one list": "Subscribe to Orbital Dispatch Daily",
    "subscribe form with an error": "not a valid email address",
    "check your inbox": "Check your inbox",
    "confirmation": "Confirm your subscription",
    "confirmed": "You are subscribed",
    "unsubscribe": "Unsubscribe from Orbital Dispatch Daily?",
    "unsubscribed": "You are unsubscribed",
    "preferences": "Sections you get",
    "preferences with the reader's time zone": "Your time zone",
    "preferences saved": "Saved.",
    "preferences of an unsubscribed reader": "Subscribe again",
    "shared copy notice": "a shared copy",
    "view in browser": "In this edition",
    "archive": "the archive",
    "archive of a list": "Follow the feed",
    "archived edition": "In this edition",
    "link not valid": "This link is not valid",
    "page not found": "This link is not valid",
    "form sent from another site": "Not sent from here",
}


def reach(public_site: PublicSite, name: str, email: str) -> tuple[str | Path, str | None]:
    """Where the page ``name`` opens and what then loads it from there (None: nothing), for
    a reader of ``email`` made for it."""
    match name:
        case "subscribe form":
            return public_site.at("/subscribe"), None
        case "subscribe form of one list":
            return public_site.at("/subscribe?list=daily"), None
        case "subscribe form with an error":
            return public_site.at("/subscribe"), SIGN_UP.format("not-an-address")
        case "check your inbox":
            return public_site.at("/subscribe"), SIGN_UP.format(email)
        case "confirmation":
            return public_site.confirm_link(email), None
        case "confirmed":
            return public_site.confirm_link(email), SUBMIT
        case "unsubscribe":
            return public_site.link(email, "unsubscribe"), None
        case "unsubscribed":
            return public_site.link(email, "unsubscribe"), SUBMIT
        case "preferences" | "preferences with the reader's time zone":
            return public_site.link(email, "preferences"), None
        case "preferences saved":
            return public_site.link(email, "preferences"), CLICK.format("save")
        case "preferences of an unsubscribed reader":
            return public_site.link(email, "preferences"), CLICK.format("unsubscribe")
        case "shared copy notice":
            return public_site.at("/shared?list=daily"), None
        case "view in browser":
            token = edition_token(SECRET_BYTES, "daily", public_site.key)
            return public_site.at(f"/e/{public_site.key}/{token}"), None
        case "archive":
            return public_site.at("/archive/"), None
        case "archive of a list":
            return public_site.at("/archive/daily/"), None
        case "archived edition":
            return public_site.at(f"/archive/daily/{public_site.key}"), None
        case "link not valid":
            return public_site.at("/u/not-a-token"), None
        case "page not found":
            return public_site.at("/no/such/page"), None
        case "form sent from another site":
            other = (
                public_site.folder / "other-site.html"
            )  # a file: its form posts with Origin null
            other.write_text(
                f'<form method="post" action="{public_site.at("/subscribe")}">'
                f'<input name="email" value="{email}"></form>'
            )
            return other, SUBMIT
    raise AssertionError(name)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("name", PAGES)
def test_every_page_of_digest_serve_has_no_serious_accessibility_violation(
    browser, axe, public_site, name, scheme
):
    email = re.sub(r"\W+", "-", f"{name}-{scheme}") + "@example.com"
    target, then = reach(public_site, name, email)
    text = assert_accessible(browser, axe, target, PAGE_WIDTH, scheme, then=then)
    assert PAGES[name] in text


# -- the preview studio ------------------------------------------------------------------


@pytest.fixture(scope="module")
def studio_url(public_site) -> Iterator[str]:
    """The preview studio (``digest preview --serve``) on a loopback port, over the same
    newsletter and store."""
    settings = public_site.ctx.settings.model_copy(
        update={"outbox": public_site.folder / "studio-outbox"}
    )
    config = uvicorn.Config(
        studio.create_app(settings), host="127.0.0.1", port=0, log_level="warning"
    )
    with uvicorn_running(config) as server:
        yield base_url(server)


# Each view of the studio, and words it shows.
STUDIO_VIEWS = {
    "": "Check:",
    "?list=weekly&section=launch-pad": "Check:",
    "?subscriber=grace.hopper%40example.com": "grace.hopper@example.com",
    "?list=no-such-list": "no list named",
}


@pytest.mark.parametrize("query", list(STUDIO_VIEWS))
def test_the_studio_has_no_serious_accessibility_violation(browser, axe, studio_url, query):
    text = assert_accessible(browser, axe, f"{studio_url}/{query}", STUDIO_WIDTH, "light")
    assert STUDIO_VIEWS[query] in text
