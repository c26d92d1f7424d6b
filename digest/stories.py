"""Stories: which reports tell the same story, and in what order a section's stories come.

Pure: everything comes in as arguments, nothing is read or written.

Two reports are one story when they link to the same page (scheme, ``www.`` and a trailing
slash aside), or when they come from different sites and the words of their title and
summary are mostly the same: the Jaccard similarity of their word sets (lower-cased,
accents and common words left out) is at least ``SIMILARITY``. That is what a wire story
rewritten by several outlets looks like: a new headline, the same facts and names.

Grouping is a similarity join with prefix filtering: each text's words are sorted rarest
first and only the first few (as many as two texts at the threshold must share at least one
of) go into an inverted index, so candidates are found without comparing every pair; each
candidate is then checked exactly. The reports are taken in the order given (best first):
a report joins the first story whose lead it resembles, else it leads a story of its own. A
story is never grown by chaining (a report resembling another story's second report does
not join it), so two distinct stories are not merged through a report between them.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from urllib.parse import urlsplit

from digest.models import Article

# The share of words two reports from different sites must have in common to be one story.
# Measured by benchmarks/selection.py: on the feed corpus no two distinct stories reach it;
# rewrites of one wire story by different outlets mostly do.
SIMILARITY = 0.4
# Fewer distinct words than this (a bare headline) is too little to tell stories apart:
# such a report is grouped by its link only.
MIN_WORDS = 12
# Only the start of a summary is compared: the lede carries the story; the rest of a long
# summary is each outlet's own.
LEDE_WORDS = 60
# How many of a report's rarest shared words find its candidates (see ``_prefix``).
PREFIX_WORDS = 8

_WORD = re.compile(r"[^\W_]+(?:[.,'][^\W_]+)*")
_COMMON_WORDS = """
    a about after again against all also an and any are as at be been before being
    but by can could did do does during for from had has have he her here hers him
    his how i if in into is it its just me more most my new no nor not now of off on
    once only or other our out over own said says same she should so some such than
    that the their them then there these they this those through to too under until
    up very was we were what when where which while who whom why will with would you
    your
"""
_STOP = frozenset(_COMMON_WORDS.split()) | frozenset("abcdefghijklmnopqrstuvwxyz")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Story:
    """One story: the report shown (``lead``) and the other reports of it (``also``)."""

    lead: Article
    also: tuple[Article, ...] = ()

    @property
    def reports(self) -> tuple[Article, ...]:
        return (self.lead, *self.also)

    @property
    def sources(self) -> int:
        """How many sites carry the story (reports from one site count once)."""
        return len({host(article.url) or article.key for article in self.reports})

    @property
    def latest(self) -> datetime:
        """When its newest report was published (else first seen)."""
        return max(published(article) for article in self.reports)


def host(url: str) -> str:
    """The site of a link, as a reader knows it: ``example.com`` for https://www.example.com/x."""
    try:
        netloc = urlsplit(url.strip()).hostname or ""
    except ValueError:  # a malformed link (an unclosed IPv6 bracket) names no site
        return ""
    return netloc.removeprefix("www.")


def same_page(url: str) -> str:
    """A link without its scheme, ``www.`` or trailing slash: equal for the same page."""
    rest = url.strip().split("://", 1)[-1].rstrip("/").lower()
    return rest.removeprefix("www.")


def published(article: Article) -> datetime:
    """The feed's own date (clamped at ingest), else when digest first saw the article."""
    return article.published_at or article.first_seen_at or _EPOCH


def words(article: Article) -> frozenset[str]:
    """The words compared: of the title and the summary's lede, normalized, common ones out."""
    text = f"{article.title} {article.summary}".lower()
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text.replace("\u2019", "'"))
        text = "".join(c for c in text if not unicodedata.combining(c))
    found = [word for word in _WORD.findall(text.replace("'s ", " ")) if word not in _STOP]
    return frozenset(found[:LEDE_WORDS])


def similarity(first: frozenset[str], second: frozenset[str]) -> float:
    """Jaccard similarity of two word sets."""
    if not first or not second:
        return 0.0
    shared = len(first & second)
    return shared / (len(first) + len(second) - shared)


def group_reports(articles: Sequence[Article], threshold: float = SIMILARITY) -> list[Story]:
    """The stories of ``articles``, taken in the order given (best first): each report
    either joins the first story whose lead links to the same page or, from another site,
    reads the same (see the module), or leads a story of its own. Stories come in the order
    of their leads; a story's other reports in the order given."""
    texts = [words(article) for article in articles]
    rarity = Counter(chain.from_iterable(texts))  # in how many reports each word is

    # Words in more reports than this are too common to find candidates by (a day's
    # "minister", "market"): two reports of one story share rarer ones (names, numbers).
    common = max(50, len(articles) // 100)
    leads: list[int] = []  # index of each story's lead in ``articles``
    members: dict[int, list[int]] = {}
    by_page: dict[str, int] = {}  # a page -> the lead of its story
    index: dict[str, list[int]] = {}  # a lead's rare word -> leads having it in their prefix
    hosts = [host(article.url) for article in articles]
    for number, article in enumerate(articles):
        page = same_page(article.url) or article.key
        joined = by_page.get(page)
        text = texts[number]
        if joined is None and len(text) >= MIN_WORDS:
            prefix = _prefix(text, rarity, threshold, common)
            joined = _best_lead(number, text, prefix, texts, hosts, index, threshold)
        else:
            prefix = ()
        if joined is None:
            leads.append(number)
            members[number] = []
            for word in prefix:
                index.setdefault(word, []).append(number)
            joined = number
        else:
            members[joined].append(number)
        by_page.setdefault(page, joined)
    return [
        Story(articles[lead], tuple(articles[other] for other in members[lead])) for lead in leads
    ]


def _prefix(
    text: frozenset[str], rarity: Counter[str], threshold: float, common: int
) -> Sequence[str]:
    """The rarest words of ``text``: two texts whose similarity reaches ``threshold`` share
    at least one word of their prefixes (the prefix filtering principle); words found in
    more than ``common`` reports, and all but the first ``PREFIX_WORDS``, are left out."""
    # A word of this report alone cannot be shared: it holds a place in the prefix but is
    # not looked up; of the others the rarest few suffice.
    shared = [word for word in text if 1 < rarity[word] <= common]
    alone = sum(rarity[word] == 1 for word in text)
    size = len(text) - math.ceil(threshold * len(text)) + 1 - alone
    if len(shared) > 1:
        shared = sorted(sorted(shared), key=rarity.__getitem__)
    return shared[: max(0, min(size, PREFIX_WORDS))]


def _best_lead(
    number: int,
    text: frozenset[str],
    prefix: Iterable[str],
    texts: Sequence[frozenset[str]],
    hosts: Sequence[str],
    index: dict[str, list[int]],
    threshold: float,
) -> int | None:
    """The first lead (in order) that reads the same as report ``number`` from another
    site, or None."""
    seen: set[int] = set()
    best: int | None = None
    size = len(text)
    for word in prefix:
        for lead in index.get(word, ()):
            if lead in seen or (best is not None and lead > best):
                continue
            seen.add(lead)
            if hosts[lead] == hosts[number] and hosts[number]:
                continue  # one site does not report one story twice under two links
            other = texts[lead]
            shared = len(text & other)  # similarity(), inlined: this is the hot loop
            if shared >= threshold * (size + len(other) - shared):
                best = lead
    return best


def rank_stories(
    stories: Iterable[Story],
    *,
    leads: Collection[int] = (),
    pins: Sequence[int] = (),
) -> list[Story]:
    """A section's stories in the order they are shown: the editor's lead first, then the
    pins in the order pinned, then the stories carried by more sites, then the newest
    (by the newest report); ties keep the order given."""
    pinned = {article_id: place for place, article_id in enumerate(pins)}

    def rank(story: Story) -> tuple[int, int, int, float]:
        article_id = story.lead.id
        if article_id is not None and article_id in leads:
            return (0, 0, 0, 0.0)
        if article_id is not None and article_id in pinned:
            return (1, pinned[article_id], 0, 0.0)
        return (2, 0, -story.sources, -story.latest.timestamp())

    return sorted(stories, key=rank)
