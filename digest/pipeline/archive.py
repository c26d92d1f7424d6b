"""The public archive: the store's sent editions -> ``digest.archive``'s pages and feeds.

``digest serve`` answers with these documents and ``digest archive build`` writes them as
files; both get the same bytes. Only editions whose sending started are public (the store's
``published_*`` queries), and only lists with ``archive = true`` (the default) have pages.
An edition's copy names nobody: it is rendered for every section, with no recipient.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date as Date
from datetime import datetime
from pathlib import Path

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_date

from digest import archive, compose
from digest.archive.pages import ListSummary
from digest.archive.urls import EDITION_KEY, ROOT_FILE, edition_file, feed_file, index_file
from digest.config import ListConfig
from digest.errors import ComposeError, ConfigError, DigestError
from digest.models import Edition
from digest.pipeline.context import Context
from digest.store.archive import PublishedEdition

log = logging.getLogger("digest.archive")

PER_PAGE = 25  # editions on one index page
FEED_ENTRIES = 20  # the newest editions a feed carries

HTML, ATOM = "text/html; charset=utf-8", "application/atom+xml; charset=utf-8"


@dataclass(frozen=True)
class ArchiveDocument:
    """A page or feed of the archive, as served and as exported."""

    body: bytes
    media_type: str
    last_modified: datetime | None  # when the newest edition it shows was frozen
    frozen: bool = False  # an edition's own page: its content never changes


@dataclass(frozen=True)
class PublicCopy:
    """An edition rendered for the archive: its page, and what its feed entry carries."""

    page: str
    subject: str
    preheader: str
    fragment: str  # the page's body as a feed entry's content


class ArchiveCopies:
    """The public copies of the editions last shown, kept in memory by ``digest serve``.

    An edition is frozen, so its copy is rendered once rather than on every request (a
    feed of 20 editions costs 20 renders with CSS inlining). Keyed by list, edition key and
    freeze time; the ``limit`` most recently used are kept. Templates are read when a copy
    is made: restart ``digest serve`` after changing them. Safe across the server's threads.
    """

    def __init__(self, limit: int = 128):
        self.limit, self.hits = limit, 0
        self._copies: OrderedDict[tuple[str, str, datetime], PublicCopy] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._copies)

    def get(
        self, key: tuple[str, str, datetime], make: Callable[[], PublicCopy | None]
    ) -> PublicCopy | None:
        with self._lock:
            if key in self._copies:
                self.hits += 1
                self._copies.move_to_end(key)
                return self._copies[key]
        made = make()  # outside the lock: two threads may render the same copy, harmlessly
        if made is not None:
            with self._lock:
                self._copies[key] = made
                while len(self._copies) > self.limit:
                    self._copies.popitem(last=False)
        return made


@dataclass
class ArchiveBuild:
    """What ``digest archive build`` did: edition pages written or already there, index
    pages and feeds written or unchanged."""

    editions_written: int = 0
    editions_skipped: int = 0
    pages_written: int = 0
    pages_unchanged: int = 0


def archived_lists(ctx: Context) -> list[ListConfig]:
    return [lst for lst in ctx.newsletter.lists if lst.archive]


def _archived(ctx: Context, list_name: str) -> ListConfig | None:
    return next((lst for lst in archived_lists(ctx) if lst.name == list_name), None)


def _urls(ctx: Context) -> archive.ArchiveUrls:
    return archive.ArchiveUrls(ctx.settings.base_url)


def _pages(ctx: Context) -> archive.Pages:
    return archive.Pages(ctx.settings.templates, ctx.newsletter, _urls(ctx))


def archive_root(ctx: Context) -> ArchiveDocument:
    """``/archive/``: the lists that have an archive."""
    summaries, newest = [], []
    for lst in archived_lists(ctx):
        summaries.append(
            ListSummary(lst, ctx.store.published_count(lst.name, apart=lst.other_series))
        )
        newest += ctx.store.published_editions(lst.name, apart=lst.other_series, limit=1)
    html = _pages(ctx).lists(summaries)
    return ArchiveDocument(html.encode(), HTML, _newest(newest))


def archive_index(
    ctx: Context, list_name: str, page: int = 1, per_page: int = PER_PAGE
) -> ArchiveDocument | None:
    """One page of a list's editions, newest first; None for a list without an archive or
    a page past the last (the first page always exists)."""
    lst = _archived(ctx, list_name)
    if lst is None or page < 1:
        return None
    pages = max(
        1, math.ceil(ctx.store.published_count(lst.name, apart=lst.other_series) / per_page)
    )
    if page > pages:
        return None
    shown = ctx.store.published_editions(
        lst.name, apart=lst.other_series, limit=per_page, offset=(page - 1) * per_page
    )
    entries = [_index_entry(ctx, lst, item) for item in shown]
    html = _pages(ctx).editions(lst, [e for e in entries if e is not None], page, pages)
    newest = ctx.store.published_editions(lst.name, apart=lst.other_series, limit=1)
    return ArchiveDocument(html.encode(), HTML, _newest(newest))


def archive_edition(
    ctx: Context, list_name: str, key: str, copies: ArchiveCopies | None = None
) -> ArchiveDocument | None:
    """An edition's archive page, or None when the list has no archive or the edition is
    not public (unknown, or its sending has not started). ``copies``: rendered copies to
    reuse and keep."""
    lst = _archived(ctx, list_name)
    published = (
        None if lst is None else ctx.store.published_edition(lst.name, key, apart=lst.other_series)
    )
    if lst is None or published is None:
        return None
    copy = _copy(ctx, lst, published, copies)
    if copy is None:
        return None
    return ArchiveDocument(copy.page.encode(), HTML, published.created_at, frozen=True)


def archive_feed(
    ctx: Context, list_name: str, copies: ArchiveCopies | None = None
) -> ArchiveDocument | None:
    """The list's Atom feed: its newest editions, each with its archive page's HTML."""
    lst = _archived(ctx, list_name)
    if lst is None:
        return None
    urls = _urls(ctx)
    entries = []
    newest = ctx.store.published_editions(lst.name, apart=lst.other_series, limit=FEED_ENTRIES)
    for item in newest:
        copy = _copy(ctx, lst, item, copies)
        if copy is None:
            continue
        entries.append(
            archive.FeedEntry(
                url=urls.edition(lst.name, item.key),
                title=copy.subject,
                summary=copy.preheader,
                content=copy.fragment,
                updated=item.created_at,
            )
        )
    body = archive.atom_feed(
        title=lst.title,
        author=ctx.newsletter.name,
        home=ctx.newsletter.website or "",
        index_url=urls.index(lst.name),
        feed_url=urls.feed(lst.name),
        entries=entries,
    )
    return ArchiveDocument(body, ATOM, _newest(newest))


def build_archive(
    ctx: Context, out: Path, list_name: str | None = None, *, rewrite: bool = False
) -> ArchiveBuild:
    """Write the archive's pages and feeds under ``out`` (DIGEST_BASE_URL's document root)
    for a static host. An edition's page already there is left as it is (its content is
    frozen) unless ``rewrite``; index pages and feeds are rewritten when they changed."""
    if list_name is not None:
        lst = ctx.newsletter.get_list(list_name)
        if not lst.archive:
            raise ConfigError(
                f"list {lst.name!r} has no archive", "set archive = true for it in digest.toml"
            )
        lists = [lst]
    else:
        lists = archived_lists(ctx)
    done = ArchiveBuild()
    copies = ArchiveCopies(limit=FEED_ENTRIES)  # the newest pages written go in the feed too
    _write_page(out / ROOT_FILE, archive_root(ctx).body, done)
    for lst in lists:
        for item in ctx.store.published_editions(lst.name, apart=lst.other_series):
            if not EDITION_KEY.fullmatch(item.key):
                continue  # not a key digest makes: no file named after it
            target = out / edition_file(lst.name, item.key)
            if target.exists() and not rewrite:
                done.editions_skipped += 1
                continue
            page = archive_edition(ctx, lst.name, item.key, copies)
            if page is not None:
                _write(target, page.body)
                done.editions_written += 1
        for number, page in _index_pages(ctx, lst):
            _write_page(out / index_file(lst.name, number), page.body, done)
        feed = archive_feed(ctx, lst.name, copies)
        if feed is not None:
            _write_page(out / feed_file(lst.name), feed.body, done)
    return done


def _index_pages(ctx: Context, lst: ListConfig) -> Iterator[tuple[int, ArchiveDocument]]:
    number = 1
    while (page := archive_index(ctx, lst.name, number)) is not None:
        yield number, page
        number += 1


def _copy(
    ctx: Context, lst: ListConfig, item: PublishedEdition, copies: ArchiveCopies | None
) -> PublicCopy | None:
    if copies is None:
        return _public_copy(ctx, lst, item)
    return copies.get((lst.name, item.key, item.created_at), lambda: _public_copy(ctx, lst, item))


def _public_copy(ctx: Context, lst: ListConfig, item: PublishedEdition) -> PublicCopy | None:
    """The edition's copy, or None when it has no page: nothing to show, a key that is no
    path segment, or a template that fails on it (said in the log; the rest of the archive
    and the feed go on without it)."""
    edition = ctx.store.edition(lst.name, item.key)
    chosen = None if edition is None else edition.for_sections(None)
    if edition is None or not chosen or not EDITION_KEY.fullmatch(item.key):
        return None
    try:
        rendered = compose.render(
            edition,
            chosen,
            newsletter=ctx.newsletter,
            lst=lst,
            base_url=ctx.settings.base_url,
            env=compose.make_environment(ctx.settings.templates, lst.templates, locale=lst.locale),
        )
    except ComposeError as exc:
        log.warning("archive: edition %s of %s has no page: %s", item.key, lst.name, exc)
        return None
    page = archive.public_copy(
        rendered.html,
        list_name=lst.name,
        list_title=lst.title,
        key=item.key,
        urls=_urls(ctx),
        locale=lst.locale,
    )
    return PublicCopy(page, rendered.subject, rendered.preheader, archive.feed_content(page))


def _index_entry(
    ctx: Context, lst: ListConfig, item: PublishedEdition
) -> archive.IndexEntry | None:
    edition = ctx.store.edition(lst.name, item.key)
    if edition is None or not EDITION_KEY.fullmatch(item.key):
        return None
    return archive.IndexEntry(
        url=_urls(ctx).edition(lst.name, item.key),
        date=_long_date(item.key, lst),
        headline=_headline(edition),
    )


def _headline(edition: Edition) -> str:
    for section in edition.sections:
        if section.articles:
            return " ".join(section.articles[0].title.split())
    return edition.key


def _long_date(key: str, lst: ListConfig) -> str:
    try:
        return format_date(Date.fromisoformat(key), format="long", locale=Locale.parse(lst.locale))
    except (ValueError, UnknownLocaleError):
        return key  # a key that is not a day (a week, a month) reads as it is


def _newest(editions: list[PublishedEdition]) -> datetime | None:
    return max((item.created_at for item in editions), default=None)


def _write_page(path: Path, body: bytes, done: ArchiveBuild) -> None:
    try:
        unchanged = path.read_bytes() == body
    except OSError:  # not there yet (or not a file: writing it says why)
        unchanged = False
    if unchanged:
        done.pages_unchanged += 1
        return
    _write(path, body)
    done.pages_written += 1


def _write(path: Path, body: bytes) -> None:
    """Write ``path`` whole or not at all: a static host never serves half a page."""
    try:
        _replace(path, body)
    except OSError as exc:
        raise DigestError(
            f"cannot write {path}: {exc.strerror or exc}", "check --out and its permissions"
        ) from None


def _replace(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(body)
        os.chmod(temporary, 0o644)  # public pages, readable by the web server
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
