"""The archive's copy of an edition: the HTML as mailed, made public and naming no one."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

import lxml.html
from lxml import etree

from digest import i18n
from digest.archive.urls import ArchiveUrls
from digest.compose import placeholders as ph

_BLOCKS = ("p", "li", "td", "th", "div", "h1", "h2", "h3", "h4", "h5", "h6")
_DOCTYPE = "<!DOCTYPE html>"


def public_copy(
    html: str,
    *,
    list_name: str,
    list_title: str,
    key: str,
    urls: ArchiveUrls,
    locale: str = "en",
) -> str:
    """The archive page of an edition from its rendered HTML (placeholders and all): the
    reader's links become public ones, the line naming the reader says what the page is, and
    ``<head>`` announces the list's feed; the words it adds are in ``locale``."""
    _ = i18n.gettext_of(locale)
    doc = lxml.html.document_fromstring(html)
    subscribe, index = urls.subscribe(list_name), urls.index(list_name)
    link_style = None
    for anchor in doc.iter("a"):
        href = anchor.get("href")
        if href == ph.UNSUBSCRIBE_URL:
            _relink(anchor, subscribe, _("Subscribe"))
            link_style = link_style or anchor
        elif href in (ph.PREFERENCES_URL, ph.VIEW_URL):
            _relink(anchor, index, _("All editions"))
    for block in _blocks_naming_the_reader(doc):
        _say_what_this_is(block, list_title, subscribe, link_style, _)
    head = doc.find("head")
    if head is not None:
        _link(head, rel="canonical", href=urls.edition(list_name, key))
        _link(
            head,
            rel="alternate",
            type="application/atom+xml",
            title=_("%(list)s: every edition") % {"list": list_title},
            href=urls.feed(list_name),
        )
    page = lxml.html.tostring(doc, doctype=_DOCTYPE, encoding="unicode", method="html")
    # A publisher's own template may put a placeholder where no rule above looks (an
    # attribute, a comment): fill any left with the same public values.
    public = {
        ph.UNSUBSCRIBE_URL: subscribe,
        ph.PREFERENCES_URL: index,
        ph.VIEW_URL: urls.edition(list_name, key),
        ph.RECIPIENT_EMAIL: _("a reader"),
    }
    for placeholder, value in public.items():
        page = page.replace(placeholder, escape(value))
    return page if page.endswith("\n") else page + "\n"


def feed_content(page: str) -> str:
    """The part of an archive page a feed entry carries: the edition's body without the
    hidden preheader and the Outlook-only comments (feed readers show neither)."""
    doc = lxml.html.document_fromstring(page)
    body = doc.find("body")
    root = body if body is not None else doc
    for hidden in list(root.xpath(".//*[@aria-hidden='true']")):
        _drop(hidden)
    for comment in list(root.iter(etree.Comment)):
        _drop(comment)
    found = root.xpath(".//*[@role='article']")
    top = found[0] if found else root
    parts = [lxml.html.tostring(child, encoding="unicode", method="html") for child in top]
    return ((top.text or "") + "".join(parts)).strip()


def _relink(anchor: lxml.html.HtmlElement, href: str, text: str) -> None:
    for child in list(anchor):
        anchor.remove(child)
    anchor.set("href", href)
    anchor.text = text


def _blocks_naming_the_reader(doc: lxml.html.HtmlElement) -> list[lxml.html.HtmlElement]:
    found = []
    for element in doc.iter():
        if not isinstance(element.tag, str):
            continue
        holder = None
        if ph.RECIPIENT_EMAIL in (element.text or ""):
            holder = element
        elif ph.RECIPIENT_EMAIL in (element.tail or ""):
            holder = element.getparent()
        while holder is not None and holder.tag not in _BLOCKS:
            holder = holder.getparent()
        if holder is not None and holder not in found:
            found.append(holder)
    return found


def _say_what_this_is(
    block: lxml.html.HtmlElement,
    list_title: str,
    subscribe: str,
    style_of: lxml.html.HtmlElement | None,
    _: Callable[[str], str],
) -> None:
    for child in list(block):
        block.remove(child)
    # One sentence to translate, the link where the translation puts it.
    sentence = _(
        "This is the public archive of %(list)s. %(subscribe)s to get each edition by email."
    )
    before, _link_mark, after = sentence.partition("%(subscribe)s")
    block.text = before % {"list": list_title}
    link = etree.SubElement(block, "a", href=subscribe)
    for name in ("class", "style"):
        value = style_of.get(name) if style_of is not None else None
        if value:
            link.set(name, value)
    link.text = _("Subscribe")
    link.tail = after % {"list": list_title}


def _link(head: lxml.html.HtmlElement, **attributes: str) -> None:
    element = etree.SubElement(head, "link")
    for name, value in attributes.items():
        element.set(name, value)
    element.tail = "\n"


def _drop(node: etree._Element) -> None:
    """Remove ``node``, keeping the text that follows it."""
    parent = node.getparent()
    if parent is None:
        return
    tail, previous = node.tail or "", node.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    parent.remove(node)
