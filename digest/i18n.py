"""The reader's language: the message catalogs shipped in ``digest/locales/`` and the
translations a list's ``locale`` picks.

A catalog is a gettext ``.po`` file (``locales/<language>/LC_MESSAGES/digest.po``), read and
compiled in memory the first time a locale asks for it, then kept: a fresh clone runs with no
build step, and the ``.po`` files are the only copy of the translations. ``make catalogs``
extracts the wording of the templates and the Python modules again (``babel.cfg``) into
``locales/digest.pot`` and updates every ``.po`` from it.

A locale takes the most specific catalog there is: ``de_CH`` reads ``de_CH`` if shipped, else
``de``, else the templates' own wording (English). The studio, an editor's tool, is not
translated; everything a reader sees (the email, the archive, the subscription pages, the
confirmation mail) is.

Imports stay light (no babel, no jinja2 at import): the CLI's ``--help`` loads this module.
"""

from __future__ import annotations

import functools
import gettext
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

LOCALES = Path(__file__).parent / "locales"
DOMAIN = "digest"
TEMPLATE = LOCALES / f"{DOMAIN}.pot"
UPDATE_COMMAND = "make catalogs"  # re-extracts the wording and updates every catalog


def catalog_path(language: str) -> Path:
    return LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def shipped() -> tuple[str, ...]:
    """The languages that have a catalog, sorted: ("ar", "de", "en", ...)."""
    if not LOCALES.is_dir():
        return ()
    return tuple(sorted(p.name for p in LOCALES.iterdir() if catalog_path(p.name).is_file()))


def catalog_for(locale: str) -> str | None:
    """The shipped catalog ``locale`` reads (``de_CH`` -> ``de``), or None when none fits.

    An unparseable locale has none (config validation reports it, not this)."""
    from babel import Locale, UnknownLocaleError

    try:
        parsed = Locale.parse(locale)
    except (UnknownLocaleError, ValueError, TypeError):
        return None
    candidates = [str(parsed)]
    if parsed.script:
        candidates.append(f"{parsed.language}_{parsed.script}")
    candidates.append(parsed.language)
    available = set(shipped())
    return next((name for name in candidates if name in available), None)


@functools.lru_cache(maxsize=32)
def translations(locale: str) -> gettext.NullTranslations:
    """The translations of ``locale``'s catalog; the templates' own wording without one.
    Compiled from the ``.po`` once per process; fuzzy entries are left out, as gettext does."""
    name = catalog_for(locale)
    if name is None:
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with catalog_path(name).open("rb") as po:
        catalog = read_po(po, locale=name, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def direction(locale: str) -> str:
    """``rtl`` for a right-to-left script (Arabic, Hebrew, Persian...), else ``ltr``."""
    from babel import Locale, UnknownLocaleError

    try:
        order = Locale.parse(locale).character_order
    except (UnknownLocaleError, ValueError, TypeError):
        return "ltr"
    return "rtl" if order == "right-to-left" else "ltr"


def html_lang(locale: str) -> str:
    """The ``lang`` attribute of a page in ``locale``: ``pt_BR`` -> ``pt-BR``."""
    return locale.replace("_", "-")


def install(
    env: jinja2.Environment,
    locale: str | None,
    remake: Callable[[str], jinja2.Environment] | None = None,
) -> jinja2.Environment:
    """Give ``env`` the gettext of ``locale`` (None: the templates' own wording), newstyle:
    ``{{ _("Read more") }}``, ``{{ _("By %(name)s", name=byline) }}``, ``{{ ngettext(...) }}``
    with the number as ``%(num)d``. As globals, so macros of imported templates translate
    too. An environment speaks one locale: ``remake`` makes the same one in another (see
    ``localized``)."""
    found = translations(locale) if locale else gettext.NullTranslations()
    env.install_gettext_translations(found, newstyle=True)  # type: ignore[attr-defined]
    # Plain attributes: Environment.extend() would not replace an overlay's inherited ones.
    setattr(env, "digest_locale", locale)  # noqa: B010
    setattr(env, "digest_remake", remake)  # noqa: B010
    return env


def localized(env: jinja2.Environment, locale: str) -> jinja2.Environment:
    """``env`` when it speaks ``locale``, else the same environment made for ``locale``.

    Made anew rather than overlaid: an overlay shares its parent's globals and its i18n
    extension's installer, so installing a catalog on it would change the parent."""
    if getattr(env, "digest_locale", None) == locale:
        return env
    remake = getattr(env, "digest_remake", None)
    if remake is None:
        raise ValueError("the environment was not made by digest: it cannot change its locale")
    made: jinja2.Environment = remake(locale)
    return made


class PageEnvironments:
    """The environments of the HTML pages read through ``loader`` (the web edge's, the
    archive's): autoescaped, StrictUndefined, one per locale, each with its catalog."""

    def __init__(self, loader: jinja2.BaseLoader):
        self.loader = loader
        self._made: dict[str, jinja2.Environment] = {}

    def __call__(self, locale: str) -> jinja2.Environment:
        if locale not in self._made:
            import jinja2  # here: the CLI's --help loads this module

            env = jinja2.Environment(
                loader=self.loader,
                autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                undefined=jinja2.StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
                extensions=["jinja2.ext.i18n"],
            )
            self._made[locale] = install(env, locale)
        return self._made[locale]


def gettext_of(locale: str) -> Callable[[str], str]:
    """``gettext`` of ``locale``'s catalog, for wording built in Python: bind it to ``_`` so
    that extraction finds the strings (``_ = i18n.gettext_of(lst.locale)``)."""
    return translations(locale).gettext


def page_values(locale: str) -> dict[str, Any]:
    """What a page's ``<html>`` says of its language: ``lang`` and ``dir``."""
    return {"lang": html_lang(locale), "dir": direction(locale)}
