"""The reader's language: the catalogs in step with the wording the code uses, every shipped
language rendering no English wording, the catalog a list's locale picks (and falls back to),
the archive, the web pages and the confirmation mail in the list's language, and `digest
check` warning about a locale without a catalog."""

from __future__ import annotations

import html as markup
import re
import shutil
from dataclasses import replace
from email import message_from_bytes, policy

import lxml.html
import pytest

from digest import archive, i18n
from digest.archive.pages import ListSummary
from digest.audience.confirmation import confirmation_message
from digest.compose import Recipient, make_environment, personalize
from digest.compose.render import make_preheader
from digest.config import ListConfig
from digest.web.pages import Pages
from tests.support.catalogs import (
    HOW,
    drift,
    drift_report,
    english_fragments,
    read_catalog,
    used_messages,
)
from tests.support.cli import load_sample, run, sample_settings, set_settings
from tests.support.editions import BASE, article, bodies, compose, golden_edition, parse
from tests.support.newsletters import localized_config
from tests.support.values import NOW, ROOT, SECRET_BYTES

LANGUAGES = [name for name in i18n.shipped() if name != "en"]


def in_locale(newsletter, locale: str) -> ListConfig:
    return newsletter.get_list("daily").model_copy(update={"locale": locale})


def full_edition(newsletter):
    """The golden edition with other reports of its stories ("Also:"), so that every piece
    of the email's wording shows."""
    edition = golden_edition(newsletter)
    first = edition.sections[0]
    wire = article(first.slug, 40, url="https://www.wire.example/2026/11/26/launch")
    section = replace(first, also={first.articles[0].key: (wire,), first.articles[1].key: (wire,)})
    return replace(edition, sections=(section, *edition.sections[1:]))


def message_in(newsletter, locale: str, edition=None):
    """(rendered, plain text, HTML) of the edition mailed to a reader of a list in ``locale``."""
    lst = in_locale(newsletter, locale)
    rendered, template = compose(
        edition or full_edition(newsletter), newsletter, lst, make_environment(locale=locale)
    )
    raw = personalize(template, Recipient(1, "reader@example.com"), secret=SECRET_BYTES).raw
    text, page = bodies(parse(raw))
    return rendered, text, page


def flat(text: str) -> str:
    """Entities decoded and runs of spaces and line breaks made one space (wrapping splits
    phrases); no-break spaces stay."""
    return re.sub(r"[ \t\r\n]+", " ", markup.unescape(text)).strip()


def words(page: str) -> str:
    """What a page shows and says of itself: its text and its titles and labels (not its
    markup, whose class names are English)."""
    doc = lxml.html.document_fromstring(page)
    for hidden in doc.xpath("//style | //script"):
        hidden.drop_tree()
    labels = [v for a in ("title", "aria-label", "alt") for v in doc.xpath(f"//@{a}")]
    return flat(" ".join([doc.text_content(), *labels]))


def english_left(text: str, language: str | None) -> list[str]:
    """The English wording of the catalog found in ``text``: each msgid's words (in
    ``language``, a translation identical to the English, as German's "Newsletter", is not
    English left over)."""
    found = []
    # The catalog's msgids and the ones the code uses (a new one is not in the catalog yet).
    template = {m.id for m in read_catalog(i18n.TEMPLATE) if m.id}
    for msgid in sorted(template | set(used_messages(ROOT)), key=str):
        own = ""
        if language and isinstance(msgid, str):
            own = i18n.translations(language).gettext(msgid)
        for fragment in english_fragments(msgid):
            if fragment in own:
                continue
            start = r"\b" if fragment[0].isalnum() else ""
            end = r"\b" if fragment[-1].isalnum() else ""
            if re.search(start + re.escape(fragment) + end, text):
                found.append(fragment)
    return found


# -- the catalogs -----------------------------------------------------------------------------


def test_the_catalogs_hold_every_msgid_the_code_uses_translated_and_none_stale():
    assert not drift(ROOT), drift_report(ROOT)


def test_every_language_ships_with_its_plural_forms():
    assert set(LANGUAGES) == {"fr", "de", "es", "pt", "it", "ja", "ar"}
    assert "nplurals=6;" in (i18n.catalog_path("ar").read_text(encoding="utf-8"))
    arabic = i18n.translations("ar")
    forms = [
        arabic.ngettext("%(num)d edition", "%(num)d editions", n) for n in (0, 1, 2, 3, 11, 100)
    ]
    assert len(set(forms)) == 6, forms
    assert (
        i18n.translations("ja").ngettext("%(num)d edition", "%(num)d editions", 5) == "%(num)d 号"
    )


def test_drift_names_each_msgid_missing_from_each_catalog_and_the_command_that_updates_them(
    tmp_path,
):
    root = tmp_path / "checkout"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "digest", root / "digest", ignore=ignore)
    shutil.copytree(ROOT / "templates", root / "templates", ignore=ignore)
    shutil.copy2(ROOT / "babel.cfg", root / "babel.cfg")
    assert drift(root) == []
    # A new line of wording in a template, and a catalog that lost one translation.
    section = root / "templates" / "partials" / "section.html.j2"
    section.write_text(section.read_text() + '{{ _("A blurb of the story") }}\n')
    german = root / "digest" / "locales" / "de" / "LC_MESSAGES" / "digest.po"
    text = german.read_text(encoding="utf-8")
    assert 'msgstr "Weiterlesen"\n' in text
    german.write_text(text.replace('msgstr "Weiterlesen"\n', 'msgstr ""\n'), encoding="utf-8")

    report = drift_report(root)
    assert (
        "digest/locales/digest.pot lacks 'A blurb of the story' "
        "(used in templates/partials/section.html.j2)"
    ) in report
    for language in i18n.shipped():
        assert (
            f"digest/locales/{language}/LC_MESSAGES/digest.po ({language}) lacks "
            "'A blurb of the story'"
        ) in report
    assert "digest/locales/de/LC_MESSAGES/digest.po (de) has no translation of 'Read more'" in (
        report
    )
    assert report.endswith(HOW) and "`make catalogs`" in HOW


# -- the email --------------------------------------------------------------------------------


def test_english_wording_is_found_where_it_is_left(newsletter):
    # What the next test looks for is there in an English edition.
    _, text, page = message_in(newsletter, "en")
    left = english_left(flat(page), None)
    assert {"View in browser", "In this edition:", "Also:", "By", "Read more"} <= set(left)
    assert {"Unsubscribe", "Manage preferences", "Privacy", "You receive"} <= set(left)
    assert {"Read more:", "Unsubscribe:", "View in your browser:"} <= set(
        english_left(flat(text), None)
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_edition_in_each_shipped_language_holds_no_english_wording(newsletter, language):
    _, text, page = message_in(newsletter, language)
    assert english_left(words(page), language) == []
    assert english_left(flat(text), language) == []
    assert f'lang="{language}"' in page


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_short_edition_s_preheader_is_in_the_list_s_language(newsletter, language):
    edition = golden_edition(newsletter)
    short = (replace(edition.sections[0], articles=(article("launch-pad", 1, title="Liftoff"),)),)
    preheader = make_preheader(short, in_locale(newsletter, language))
    assert english_left(preheader, language) == []
    assert preheader.startswith("Liftoff · ")


def test_a_french_list_reads_french_in_both_parts(newsletter):
    _, text, page = message_in(newsletter, "fr")
    page, text = flat(page), flat(text)
    assert "Voir dans le navigateur" in page and "Dans cette édition\u00a0:" in page
    assert "Par Zoë Ribeiro" in page and ">Lire la suite<" in page and "Aussi\u00a0:" in page
    assert (
        "Vous recevez Orbital Dispatch Daily parce que reader@example.com s\u2019y est abonné sur"
        in page
    )
    assert ">Se désabonner<" in page and ">Gérer mes préférences<" in page
    assert ">Confidentialité<" in page
    assert "Lire la suite\u00a0:" in text and "Se désabonner\u00a0:" in text
    assert (
        "Vous recevez Orbital Dispatch Daily parce que cette adresse s\u2019y est abonnée" in text
    )
    assert "Gérer mes préférences\u00a0:" in text and "Confidentialité\u00a0:" in text


def test_a_list_in_a_regional_locale_reads_its_language_s_catalog(newsletter):
    assert i18n.catalog_for("de_CH") == "de"
    assert i18n.catalog_for("pt_BR") == "pt" and i18n.catalog_for("en_AU") == "en"
    assert i18n.catalog_for("sw") is None and i18n.catalog_for("not a locale") is None
    _, text, page = message_in(newsletter, "de_CH")
    assert 'lang="de-CH"' in page and ">Weiterlesen<" in page and "Abbestellen:" in text
    # Without a catalog, the templates' own wording, the date in the locale still.
    _, text, page = message_in(newsletter, "sw")
    assert ">Read more<" in page and "Unsubscribe:" in text and "Novemba" in text


def test_an_environment_made_for_another_locale_renders_the_list_s(newsletter):
    lst = in_locale(newsletter, "it")
    env = make_environment(locale="de")
    rendered, _ = compose(full_edition(newsletter), newsletter, lst, env)
    assert "Continua a leggere" in rendered.html and "Weiterlesen" not in rendered.html
    # The German environment is left as it was.
    rendered, _ = compose(full_edition(newsletter), newsletter, in_locale(newsletter, "de"), env)
    assert "Weiterlesen" in rendered.html


# -- the archive, the web pages, the confirmation mail ---------------------------------------


def test_a_french_list_s_archive_pages_are_french(newsletter):
    lst = in_locale(newsletter, "fr")
    rendered, _, _ = message_in(newsletter, "fr")
    urls = archive.ArchiveUrls(BASE)
    copy = archive.public_copy(
        rendered.html,
        list_name=lst.name,
        list_title=lst.title,
        key="2026-11-26",
        urls=urls,
        locale="fr",
    )
    copy = flat(copy)
    assert "Ceci est l\u2019archive publique de Orbital Dispatch Daily." in copy
    assert ">S\u2019abonner</a> pour recevoir chaque édition par e-mail." in copy
    assert ">Toutes les éditions<" in copy and "Orbital Dispatch Daily\u00a0: toutes les" in copy
    assert english_left(words(copy), "fr") == []

    entry = archive.IndexEntry(urls.edition(lst.name, "2026-11-26"), "26 novembre 2026", "Titre")
    index = flat(archive.Pages(None, newsletter, urls).editions(lst, [entry], 2, 3))
    assert '<html lang="fr" dir="ltr">' in index
    assert "Éditions plus récentes" in index and "Page 2 sur 3" in index
    assert "<title>Orbital Dispatch Daily, page 2 · Orbital Dispatch</title>" in index
    assert english_left(words(index), "fr") == []


def test_the_archive_of_every_list_counts_editions_in_the_first_list_s_plural_forms(newsletter):
    french = newsletter.model_copy(update={"lists": (in_locale(newsletter, "fr"),)})
    pages = archive.Pages(None, french, archive.ArchiveUrls(BASE))
    lst = french.lists[0]
    assert "1 édition ·" in pages.lists([ListSummary(lst, 1)])
    assert "2 éditions ·" in pages.lists([ListSummary(lst, 2)])
    arabic = newsletter.model_copy(update={"lists": (in_locale(newsletter, "ar"),)})
    pages = archive.Pages(None, arabic, archive.ArchiveUrls(BASE))
    page = pages.lists([ListSummary(arabic.lists[0], 2)])
    assert '<html lang="ar" dir="rtl">' in page and "عددان" in page


def test_the_subscription_pages_speak_the_list_s_language(newsletter):
    pages = Pages(None, newsletter.model_copy(update={"lists": (in_locale(newsletter, "es"),)}))
    lst = pages.newsletter.lists[0]
    body = flat(
        pages.render("unsubscribe.html.j2", title="t", lst=lst, already=False).body.decode()
    )
    assert "¿Darse de baja de Orbital Dispatch Daily?" in body and ">Darse de baja<" in body
    assert english_left(words(body), "es") == []
    # A page about no list (a link that is not valid) speaks the first list's language.
    body = flat(pages.render("invalid.html.j2", title="t").body.decode())
    assert '<html lang="es" dir="ltr">' in body and "Este enlace no es válido" in body


def test_the_confirmation_mail_is_in_the_list_s_language(newsletter):
    raw = confirmation_message(
        lst=in_locale(newsletter, "fr"),
        newsletter_name="Orbital Dispatch",
        recipient="reader@example.com",
        confirm_url=f"{BASE}/c/token",
        subscriber_id=3,
        request_id=9,
        date=NOW,
    ).raw
    mail = message_from_bytes(raw, policy=policy.default)
    assert mail["Subject"] == "Confirmez votre abonnement à Orbital Dispatch Daily"
    body = flat(mail.get_content())
    assert "Quelqu\u2019un, sans doute vous, a demandé à recevoir Orbital Dispatch Daily" in body
    assert "Si vous n\u2019avez rien demandé, ignorez ce message" in body
    assert english_left(body, "fr") == []


# -- digest check ------------------------------------------------------------------------------


@pytest.mark.parametrize(("locale", "warned"), [("sw", True), ("de_CH", False), ("ar", False)])
def test_check_warns_about_a_list_whose_locale_has_no_catalog(
    monkeypatch, tmp_path, db_url, locale, warned
):
    set_settings(
        monkeypatch, sample_settings(db_url, DIGEST_CONFIG=str(localized_config(tmp_path, locale)))
    )
    load_sample()
    output = run("check", "--list", "daily").output
    warning = (
        f"warning: lists.daily.locale: no catalog for locale {locale}: the wording stays "
        f"English (shipped: {', '.join(i18n.shipped())};"
    )
    assert (warning in " ".join(output.split())) is warned, output
