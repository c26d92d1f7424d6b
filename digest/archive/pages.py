"""The archive's index pages, from the templates in ``archive/`` (DIGEST_TEMPLATES's
``archive/`` folder first, so a publisher can restyle them; the defaults ship with digest).
Jinja2 with autoescape and StrictUndefined, as every web page. A list's pages speak its
locale; the page of every list speaks the first list's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader

from digest import i18n
from digest.archive.urls import ArchiveUrls
from digest.compose import TEMPLATES
from digest.config import ListConfig, Newsletter


@dataclass(frozen=True)
class IndexEntry:
    """One edition as an index page lists it."""

    url: str
    date: str  # in the list's locale, e.g. "November 26, 2026"
    headline: str


@dataclass(frozen=True)
class ListSummary:
    lst: ListConfig
    editions: int


class Pages:
    def __init__(self, own: Path | None, newsletter: Newsletter, urls: ArchiveUrls):
        loaders = [FileSystemLoader(str(own / "archive"))] if own else []
        # One environment per locale: ``self.env(locale)``.
        self.env = i18n.PageEnvironments(
            ChoiceLoader([*loaders, FileSystemLoader(str(TEMPLATES / "archive"))])
        )
        self.newsletter, self.urls = newsletter, urls

    def _render(self, name: str, locale: str, **values: Any) -> str:
        html = (
            self.env(locale)
            .get_template(name)
            .render(
                newsletter=self.newsletter, urls=self.urls, **i18n.page_values(locale), **values
            )
        )
        return html if html.endswith("\n") else html + "\n"

    def lists(self, lists: Sequence[ListSummary]) -> str:
        """``/archive/``: every list that has an archive."""
        locale = self.newsletter.lists[0].locale
        _ = i18n.gettext_of(locale)
        return self._render("lists.html.j2", locale, title=_("Archive"), lists=lists)

    def editions(
        self, lst: ListConfig, entries: Sequence[IndexEntry], page: int, pages: int
    ) -> str:
        """``/archive/<list>/``: one page of a list's editions, newest first."""
        _ = i18n.gettext_of(lst.locale)
        return self._render(
            "editions.html.j2",
            lst.locale,
            title=lst.title
            if page == 1
            else _("%(list)s, page %(page)d") % {"list": lst.title, "page": page},
            lst=lst,
            entries=entries,
            page=page,
            pages=pages,
        )
