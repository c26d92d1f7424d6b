"""Selection and composition: today's edition of a list, and each reader's message of it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from digest import compose, periods
from digest.config import ListConfig, Settings
from digest.models import Curation, Edition, OutgoingMessage, Readers, Subscriber
from digest.pipeline.context import Context
from digest.selection import select_edition, window_start

SAMPLE_RECIPIENT = compose.Recipient(
    subscriber_id=0, email="reader@example.com", name="Sample Reader"
)


def current_edition(
    ctx: Context,
    lst: ListConfig,
    now: datetime,
    *,
    create: bool,
    key: str | None = None,
    frequency: str | None = None,
) -> Edition | None:
    """The edition of a list due at ``now`` in the series of ``frequency`` (None: the
    list's own), or the one named by ``key``: the frozen one if its sending started, else
    its draft built afresh from the current articles and the editor's curation; None when
    nothing is new.

    ``create`` freezes a draft without filling its ledger (a send freezes and fills in one
    transaction with ``Store.freeze_edition``, so only tests and benchmarks ask for this)."""
    key = key or lst.key_at(now, frequency)
    stored = ctx.store.edition(lst.name, key)
    if stored is not None and stored.frozen:
        return stored
    edition = build_draft(ctx, lst, key, now, stored)
    if edition is not None and create:
        edition = ctx.store.create_edition(edition)
    return edition


def build_draft(
    ctx: Context, lst: ListConfig, key: str, now: datetime, stored: Edition | None
) -> Edition | None:
    """The draft ``key`` of a list as it stands at ``now``: the articles new since the
    previous frozen edition of its series (a weekly series of a daily list: the week's),
    none the series has mailed, shaped by the curation stored with the draft."""
    sections = ctx.newsletter.sections_of(lst)
    curation = stored.curation if stored is not None else Curation()
    since = window_start(now, ctx.store.previous_edition_time(lst.name, key), lst.window_of(key))
    edition = select_edition(
        list_name=lst.name,
        key=key,
        sections=sections,
        candidates=ctx.store.articles(sections=[s.slug for s in sections], since=since),
        already_sent=ctx.store.sent_article_keys(lst.name, periods.key_kind(key)),
        since=since,
        now=now,
        curation=curation,
        chosen=ctx.store.articles(ids=curation.chosen) if curation.chosen else (),
        max_age_hours=lst.max_age_hours,
    )
    if edition is not None and stored is not None:
        edition = replace(edition, id=stored.id, created_at=stored.created_at)
    return edition


def next_key(ctx: Context, lst: ListConfig, now: datetime, frequency: str | None = None) -> str:
    """The key of the list's next edition to go out (in the series of ``frequency``; None:
    the list's own): the current period's, unless its sending started."""
    schedule = lst.series_schedule(frequency)
    key = lst.key_at(now, frequency)
    stored = ctx.store.edition(lst.name, key)
    return periods.following_key(schedule, key) if stored is not None and stored.frozen else key


def readers_of(lst: ListConfig, frequency: str | None) -> Readers:
    """Which of the list's subscriptions get the series of ``frequency`` (None or the
    list's own schedule: its own series)."""
    own = lst.cadence.kind
    return Readers(None if frequency in (None, own) else frequency, lst.other_series)


class Composer:
    """Renders and inlines once per distinct section set, then personalizes per recipient."""

    def __init__(self, ctx: Context, edition: Edition, lst: ListConfig, now: datetime):
        self.ctx, self.edition, self.lst, self.now = ctx, edition, lst, now
        self.secret = ctx.settings.require_secret()
        self.env = compose.make_environment(
            ctx.settings.templates, lst.templates, locale=lst.locale
        )
        self._templates: dict[tuple, compose.MessageTemplate] = {}
        self.notes: dict[tuple[str, ...], tuple[str, ...]] = {}  # what trimming did, per set

    def template(
        self, sections: frozenset[str] | None, omit: frozenset[int] = frozenset()
    ) -> compose.MessageTemplate | None:
        """The message of the edition for these sections, less the articles ``omit`` names
        (those the reader was queued for in another edition); None when nothing is left."""
        chosen = self.edition.for_sections(sections, omit)
        if not chosen:
            return None
        slugs = tuple(s.slug for s in chosen)
        # Rendered once per section set, and per set of articles left out (rare: readers
        # who changed frequency).
        variant = (
            slugs,
            tuple(sorted(a.id or 0 for s in chosen for a in s.articles)) if omit else (),
        )
        if variant not in self._templates:
            rendered = compose.render(
                self.edition,
                chosen,
                newsletter=self.ctx.newsletter,
                lst=self.lst,
                base_url=self.ctx.settings.base_url,
                env=self.env,
            )
            self.notes[slugs] = rendered.notes
            self._templates[variant] = compose.prepare(
                rendered,
                self.edition,
                newsletter=self.ctx.newsletter,
                lst=self.lst,
                base_url=self.ctx.settings.base_url,
                date=self.now,
                secret=self.secret,
            )
        return self._templates[variant]

    def message(self, subscriber: Subscriber) -> OutgoingMessage | None:
        template = self.template(subscriber.sections, subscriber.omit)
        if template is None:
            return None
        recipient = compose.Recipient(
            subscriber_id=subscriber.id or 0, email=subscriber.email, name=subscriber.name
        )
        message = compose.personalize(template, recipient, secret=self.secret)
        return with_verp(self.ctx.settings, self.secret, message, self.lst.name)

    @property
    def variants(self) -> int:
        return len(self._templates)


def with_verp(
    settings: Settings, secret: bytes, message: OutgoingMessage, list_name: str
) -> OutgoingMessage:
    """The message with its VERP envelope sender, when DIGEST_BOUNCE_ADDRESS is set."""
    from digest.audience.bounces import verp_address

    if settings.bounce_address is None or message.edition_id == 0 or message.subscriber_id >= 2**32:
        return message
    return replace(
        message,
        envelope_from=verp_address(
            secret, settings.bounce_address, message.edition_id, message.subscriber_id, list_name
        ),
    )
