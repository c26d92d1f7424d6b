"""The typed values passed between stages.

Each stage (ingest -> store -> select -> compose -> send) talks to the next only through these
plain, immutable values. None of them knows about SQL, HTTP, SMTP or the terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from digest.states import (
    FINAL_STATES,
    OUTCOME_STATES,
    PENDING_STATES,
    PROBLEM_STATES,
    TEST_SUBJECT_PREFIX,
    DeliveryState,
    EditionState,
    SubscriberStatus,
)


@dataclass(frozen=True)
class Article:
    """One article as ingested and stored.

    ``key`` is the article's identity: the feed's GUID, else its canonical link, else a hash
    of title and summary. ``first_seen_at`` is when digest first saw it; selection trusts that
    rather than the feed's own date.
    """

    key: str
    section: str
    title: str
    url: str
    summary: str = ""
    byline: str | None = None
    dateline: str | None = None
    image: str | None = None
    published_at: datetime | None = None
    first_seen_at: datetime | None = None
    id: int | None = None
    # The picture's size in pixels when the feed gives it (media:content width and height).
    image_width: int | None = None
    image_height: int | None = None
    # The feed's categories (tags) of the entry; they route it when its feed covers several
    # sections. Not stored: a routed article keeps the section it was filed under.
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    """A section of an edition: its articles in order, the first one being the lead.

    ``also``: for an article shown (by its key), the other reports of the same story, from
    other sites, shown as links after it."""

    slug: str
    title: str
    articles: tuple[Article, ...]
    also: Mapping[str, tuple[Article, ...]] = field(default_factory=dict)

    def also_for(self, article: Article) -> tuple[Article, ...]:
        return tuple(self.also.get(article.key, ()))


@dataclass(frozen=True)
class Curation:
    """An editor's choices for one edition, named by article id: applied at every rebuild of
    its draft, and kept with the edition once it is frozen.

    ``leads``: articles made the lead of their section (the latest choice of a section wins);
    ``pins``: articles kept in the edition whatever the window, ranked first after the lead
    (the section's cap still holds: a pin takes the place of its last new article);
    ``drops``: articles left out; ``moves``: (article, position in its section from 1),
    applied in order after ranking; ``note``: the introduction, in the small markup of
    ``digest.compose.note``."""

    leads: tuple[int, ...] = ()
    pins: tuple[int, ...] = ()
    drops: tuple[int, ...] = ()
    moves: tuple[tuple[int, int], ...] = ()
    note: str = ""

    @property
    def chosen(self) -> tuple[int, ...]:
        """The articles the editor brought in (leads, then pins), each once."""
        return tuple(dict.fromkeys((*reversed(self.leads), *self.pins)))

    def __bool__(self) -> bool:
        return bool(self.leads or self.pins or self.drops or self.moves or self.note)


@dataclass(frozen=True)
class Edition:
    """One list's issue for one day: a draft, rebuilt from the current articles and the
    editor's curation until its first message is queued, then frozen."""

    list_name: str
    key: str  # the date in the list's time zone, e.g. "2026-11-26"
    created_at: datetime
    sections: tuple[Section, ...]
    id: int | None = None
    state: EditionState | None = None  # None: built now, not stored
    curation: Curation = field(default_factory=Curation)
    frozen_at: datetime | None = None

    @property
    def frozen(self) -> bool:
        """Whether its selection is fixed: sending started (or, in a store from before
        drafts, the edition was created)."""
        return self.state not in (None, EditionState.draft)

    @property
    def stored_id(self) -> int:
        """The id of an edition read from or saved in the store."""
        if self.id is None:
            raise ValueError(f"edition {self.key} of {self.list_name} is not stored")
        return self.id

    @property
    def article_count(self) -> int:
        return sum(len(s.articles) for s in self.sections)

    def for_sections(
        self, slugs: frozenset[str] | None, omit: frozenset[int] = frozenset()
    ) -> tuple[Section, ...]:
        """The sections a subscriber with these preferences gets (None: all of them), less the
        articles ``omit`` names (a story whose shown article is omitted goes with it)."""
        chosen = (
            self.sections if slugs is None else tuple(s for s in self.sections if s.slug in slugs)
        )
        if not omit:
            return chosen
        kept = []
        for s in chosen:
            articles = tuple(a for a in s.articles if a.id not in omit)
            if articles:
                also = {
                    a.key: tuple(r for r in s.also_for(a) if r.id not in omit) for a in articles
                }
                kept.append(
                    Section(s.slug, s.title, articles, {k: v for k, v in also.items() if v})
                )
        return tuple(kept)


@dataclass(frozen=True)
class Subscriber:
    """A subscriber as one list sees it: ``sections`` None means every section."""

    email: str
    name: str = ""
    status: SubscriberStatus = SubscriberStatus.active
    sections: frozenset[str] | None = None
    lists: tuple[str, ...] = ()
    id: int | None = None
    # Articles of the edition this reader is not sent (queued for them in another edition).
    omit: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Readers:
    """Which of a list's subscriptions one series of its editions goes to: ``frequency``
    None is the list's own series, which also takes the readers whose chosen frequency is
    not among ``others`` (the other series the list offers now); else the readers who chose
    ``frequency``."""

    frequency: str | None = None
    others: tuple[str, ...] = ()


EVERY_READER = Readers()  # a list offering one series: all its readers get it


@dataclass(frozen=True)
class Membership:
    """One subscription: a list, its state, whether it is paused, and its sections."""

    list: str
    state: str = "active"
    paused: bool = False
    sections: frozenset[str] | None = None
    # daily, weekly or monthly: the series of the list's editions they get (None: its own).
    frequency: str | None = None


@dataclass(frozen=True)
class NewSubscriber:
    """A subscriber to add or import: ``sections`` None means every section.

    ``memberships`` overrides ``lists``/``sections`` per list when given (an export's rows
    carry them, so that a round trip keeps per-list states and sections).
    """

    email: str
    name: str = ""
    lists: tuple[str, ...] = ()
    sections: frozenset[str] | None = None
    status: SubscriberStatus = SubscriberStatus.active
    consent_source: str | None = None
    consent_at: datetime | None = None
    consent_ip: str | None = None
    memberships: tuple[Membership, ...] | None = None
    line: int = 0  # where it was read from, for reporting
    # The row says each list's frequency (an import with a frequency column): --update
    # applies it; without one, stored frequencies are kept.
    frequency_given: bool = False
    timezone: str | None = None  # an IANA zone the person chose; None: none given

    def all_memberships(self) -> tuple[Membership, ...]:
        if self.memberships is not None:
            return self.memberships
        return tuple(Membership(name, sections=self.sections) for name in self.lists)


@dataclass(frozen=True)
class SubscriberRecord:
    """Everything stored about one subscriber (for show and export)."""

    id: int
    email: str
    name: str
    status: SubscriberStatus
    consent_source: str | None
    consent_at: datetime | None
    consent_ip: str | None
    created_at: datetime
    soft_bounces: float = 0.0
    memberships: tuple[Membership, ...] = field(default=())
    timezone: str | None = None  # an IANA zone the person chose; None: each list's

    @property
    def lists(self) -> tuple[str, ...]:
        return tuple(m.list for m in self.memberships)

    def membership(self, list_name: str) -> Membership | None:
        return next((m for m in self.memberships if m.list == list_name), None)


@dataclass(frozen=True)
class RenderedEdition:
    """An edition composed for one set of sections, before personalization.

    ``html`` is inlined; both bodies hold the recipient placeholders of ``digest.compose``.
    """

    section_slugs: tuple[str, ...]
    subject: str
    preheader: str
    html: str
    text: str
    notes: tuple[str, ...] = ()  # what was trimmed to fit the size budget, one line each


@dataclass(frozen=True)
class MessagePieces:
    """How a message's ``raw`` was joined from a template: ``raw[:start]`` is the recipient's
    own, the rest is ``layout`` with each entry that is not bytes replaced by the next of
    ``values``. The layout is the same object for every recipient of a template, so work on
    its constant bytes (DKIM's body canonicalization) can be done once per template."""

    start: int
    layout: tuple[object, ...]
    values: tuple[bytes, ...]


@dataclass(frozen=True)
class OutgoingMessage:
    """One recipient's message, as the exact bytes to hand to the relay."""

    edition_id: int
    subscriber_id: int
    recipient: str
    envelope_from: str
    message_id: str
    raw: bytes
    # No line of ``raw`` starts with "." (checked when it was built): SMTP's dot-stuffing,
    # a scan of the whole message per recipient, can be skipped.
    dot_safe: bool = False
    # How ``raw`` was joined, when it was personalized from a template (None otherwise).
    pieces: MessagePieces | None = None


@dataclass(frozen=True)
class DeliveryResult:
    """What became of one message."""

    subscriber_id: int
    state: DeliveryState
    code: int | None = None
    reply: str = ""
    extra: dict = field(default_factory=dict)


__all__ = [
    "EVERY_READER",
    "FINAL_STATES",
    "OUTCOME_STATES",
    "PENDING_STATES",
    "PROBLEM_STATES",
    "TEST_SUBJECT_PREFIX",
    "Article",
    "Curation",
    "DeliveryResult",
    "DeliveryState",
    "Edition",
    "EditionState",
    "Membership",
    "MessagePieces",
    "NewSubscriber",
    "OutgoingMessage",
    "Readers",
    "RenderedEdition",
    "Section",
    "Subscriber",
    "SubscriberRecord",
    "SubscriberStatus",
]
