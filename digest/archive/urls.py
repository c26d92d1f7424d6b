"""Where the archive lives: every link is DIGEST_BASE_URL followed by one of these paths, so
a served page and an exported file hold the same bytes.

    /archive/                     the lists          file: archive/index.html
    /archive/<list>/              newest editions    file: archive/<list>/index.html
    /archive/<list>/page/<n>      older ones (n>=2)  file: archive/<list>/page/<n>.html
    /archive/<list>/<key>         one edition        file: archive/<list>/<key>.html
    /archive/<list>.atom          the feed           file: archive/<list>.atom
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

# What an edition key may be to have a page (a day, a week such as 2026-W49, a month): a
# file name and a path segment as it is, never a way out of the export's folder.
EDITION_KEY = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{0,31}")


@dataclass(frozen=True)
class ArchiveUrls:
    base_url: str  # DIGEST_BASE_URL, without a trailing slash

    def root(self) -> str:
        return f"{self.base_url}/archive/"

    def index(self, list_name: str, page: int = 1) -> str:
        if page <= 1:
            return f"{self.base_url}/archive/{list_name}/"
        return f"{self.base_url}/archive/{list_name}/page/{page}"

    def edition(self, list_name: str, key: str) -> str:
        return f"{self.base_url}/archive/{list_name}/{quote(key)}"

    def feed(self, list_name: str) -> str:
        return f"{self.base_url}/archive/{list_name}.atom"

    def subscribe(self, list_name: str) -> str:
        return f"{self.base_url}/subscribe?list={list_name}"


def index_file(list_name: str, page: int = 1) -> str:
    """The exported file of an index page, relative to the export's folder."""
    if page <= 1:
        return f"archive/{list_name}/index.html"
    return f"archive/{list_name}/page/{page}.html"


def edition_file(list_name: str, key: str) -> str:
    return f"archive/{list_name}/{key}.html"


def feed_file(list_name: str) -> str:
    return f"archive/{list_name}.atom"


ROOT_FILE = "archive/index.html"
