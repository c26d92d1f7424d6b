"""Rendering the web pages: Jinja2 with autoescape and StrictUndefined, from the web/ folder of
the default templates shipped with the package (the web/ folder of DIGEST_TEMPLATES is looked
up first, so a publisher can restyle them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    select_autoescape,
)
from starlette.responses import HTMLResponse

from digest.compose.render import TEMPLATES
from digest.config import Newsletter

WEB_TEMPLATES = TEMPLATES / "web"


class Pages:
    def __init__(self, own: Path | None, newsletter: Newsletter):
        loaders = [FileSystemLoader(str(own / "web"))] if own else []
        self.env = Environment(
            loader=ChoiceLoader([*loaders, FileSystemLoader(str(WEB_TEMPLATES))]),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.newsletter = newsletter

    def render(self, name: str, *, status: int = 200, **values: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(newsletter=self.newsletter, **values)
        return HTMLResponse(html, status_code=status)
