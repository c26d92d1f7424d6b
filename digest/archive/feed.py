"""The Atom 1.0 feed of a list's editions (RFC 4287): one entry per edition, its HTML as
content. Ids are the editions' permanent addresses, and every date is the moment an edition
was frozen, so rebuilding the feed, served or exported, gives the same document."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

ATOM = "http://www.w3.org/2005/Atom"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# A feed with no edition yet still needs an <updated>: a fixed one keeps it the same.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FeedEntry:
    url: str  # the edition's archive page: its link and its id
    title: str
    summary: str
    content: str  # an HTML fragment
    updated: datetime


def atom_feed(
    *,
    title: str,
    author: str,
    home: str,
    index_url: str,
    feed_url: str,
    entries: Sequence[FeedEntry],
) -> bytes:
    """The feed document, UTF-8, newest entry first as given."""
    feed = etree.Element(f"{{{ATOM}}}feed", nsmap={None: ATOM})
    _text(feed, "id", index_url)
    _text(feed, "title", title)
    updated = max((entry.updated for entry in entries), default=NEVER)
    _text(feed, "updated", _date(updated))
    person = etree.SubElement(feed, f"{{{ATOM}}}author")
    _text(person, "name", author)
    if home:
        _text(person, "uri", home)
    _link(feed, feed_url, rel="self", type="application/atom+xml")
    _link(feed, index_url, rel="alternate", type="text/html")
    _text(feed, "generator", "digest")
    for item in entries:
        entry = etree.SubElement(feed, f"{{{ATOM}}}entry")
        _text(entry, "id", item.url)
        _text(entry, "title", item.title)
        _text(entry, "updated", _date(item.updated))
        _text(entry, "published", _date(item.updated))
        _link(entry, item.url, rel="alternate", type="text/html")
        if item.summary:
            _text(entry, "summary", item.summary)
        _text(entry, "content", item.content).set("type", "html")
    return etree.tostring(feed, xml_declaration=True, encoding="utf-8") + b"\n"


def _text(parent: etree._Element, name: str, value: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{ATOM}}}{name}")
    element.text = _NOT_XML.sub("", value)
    return element


def _link(parent: etree._Element, href: str, **attributes: str) -> None:
    link = etree.SubElement(parent, f"{{{ATOM}}}link", href=href)
    for name, value in attributes.items():
        link.set(name, value)


def _date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
