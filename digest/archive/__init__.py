"""The public archive of editions: pages and an Atom feed that name no reader. Pure.

The copy of an edition here is rendered for nobody: the footer's unsubscribe and preferences
links become a "Subscribe" link and a link to the list's other editions, the line naming the
recipient says what the page is, and no placeholder of ``digest.compose`` survives (any left
in a publisher's own template is filled with the same public values). ``digest.pipeline``
feeds these functions from the store, and ``digest serve`` and ``digest archive build`` send
or write the same bytes.

    ArchiveUrls     where everything lives under DIGEST_BASE_URL
    public_copy()   an edition's rendered HTML -> the archive's page of it
    feed_content()  that page -> the HTML fragment an Atom entry carries
    atom_feed()     entries -> the list's Atom 1.0 document
    Pages           the index pages (the lists; one list's editions, a page at a time)
"""

from digest.archive.copy import feed_content, public_copy
from digest.archive.feed import FeedEntry, atom_feed
from digest.archive.pages import IndexEntry, Pages
from digest.archive.urls import ArchiveUrls

__all__ = [
    "ArchiveUrls",
    "FeedEntry",
    "IndexEntry",
    "Pages",
    "atom_feed",
    "feed_content",
    "public_copy",
]
