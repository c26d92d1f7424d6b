"""Rendering the web pages: Jinja2 with autoescape and StrictUndefined, from the web/ folder of
the default templates shipped with the package (the web/ folder of DIGEST_TEMPLATES is looked
up first, so a publisher can restyle them).

A page about a list speaks the list's locale; a page about none (a link that is not valid, a
refused form) speaks the first list's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    FileSystemLoader,
)
from starlette.responses import HTMLResponse

from digest import i18n
from digest.compose.render import TEMPLATES
from digest.config import ListConfig, Newsletter

WEB_TEMPLATES = TEMPLATES / "web"


class Pages:
    def __init__(self, own: Path | None, newsletter: Newsletter):
        loaders = [FileSystemLoader(str(own / "web"))] if own else []
        # One environment per locale: ``self.env(locale)``.
        self.env = i18n.PageEnvironments(
            ChoiceLoader([*loaders, FileSystemLoader(str(WEB_TEMPLATES))])
        )
        self.newsletter = newsletter

    def locale(self, lst: ListConfig | None) -> str:
        return (lst or self.newsletter.lists[0]).locale

    def gettext(self, lst: ListConfig | None) -> Callable[[str], str]:
        """The wording of ``lst``'s pages, for what a handler writes itself (titles, errors)."""
        return i18n.gettext_of(self.locale(lst))

    def render(self, name: str, *, status: int = 200, **values: Any) -> HTMLResponse:
        """The page ``name``, in the locale of the ``lst`` among ``values`` (if any)."""
        locale = self.locale(values.get("lst"))
        html = (
            self.env(locale)
            .get_template(name)
            .render(newsletter=self.newsletter, **i18n.page_values(locale), **values)
        )
        return HTMLResponse(html, status_code=status)
