"""Selection and composition: today's edition of a list, and each reader's message of it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from digest import compose, periods
from digest.config import ListConfig, Settings
from digest.models import Curation, Edition, OutgoingMessage, Subscriber
from digest.pipeline.context import Context
from digest.selection import select_edition, window_start

SAMPLE_RECIPIENT = compose.Recipient(
    subscriber_id=0, email="reader@example.com", name="Sample Reader"
)


def current_edition(
    ctx: Context, lst: ListConfig, now: datetime, *, create: bool, key: str | None = None
) -> Edition | None:
    """The edition of a list due at ``now`` (or the one named by ``key``): the frozen one if
    its sending started, else its draft built afresh from the current articles and the
    editor's curation; None when nothing is new.

    ``create`` freezes a draft without filling its ledger (a send freezes and fills in one
    transaction with ``Store.freeze_edition``, so only tests and benchmarks ask for this)."""
    key = key or lst.key_at(now)
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
    list's previous frozen edition, shaped by the curation stored with the draft."""
    sections = ctx.newsletter.sections_of(lst)
    curation = stored.curation if stored is not None else Curation()
    since = window_start(now, ctx.store.previous_edition_time(lst.name, key), lst.window)
    edition = select_edition(
        list_name=lst.name,
        key=key,
        sections=sections,
        candidates=ctx.store.articles(sections=[s.slug for s in sections], since=since),
        already_sent=ctx.store.sent_article_keys(lst.name),
        since=since,
        now=now,
        curation=curation,
        chosen=ctx.store.articles(ids=curation.chosen) if curation.chosen else (),
        max_age_hours=lst.max_age_hours,
    )
    if edition is not None and stored is not None:
        edition = replace(edition, id=stored.id, created_at=stored.created_at)
    return edition


def next_key(ctx: Context, lst: ListConfig, now: datetime) -> str:
    """The key of the list's next edition to go out: today's, unless its sending started."""
    key = lst.key_at(now)
    stored = ctx.store.edition(lst.name, key)
    return periods.following_key(lst.cadence, key) if stored is not None and stored.frozen else key


class Composer:
    """Renders and inlines once per distinct section set, then personalizes per recipient."""

    def __init__(self, ctx: Context, edition: Edition, lst: ListConfig, now: datetime):
        self.ctx, self.edition, self.lst, self.now = ctx, edition, lst, now
        self.secret = ctx.settings.require_secret()
        self.env = compose.make_environment(
            ctx.settings.templates, lst.templates, locale=lst.locale
        )
        self._templates: dict[tuple[str, ...], compose.MessageTemplate] = {}
        self.notes: dict[tuple[str, ...], tuple[str, ...]] = {}  # what trimming did, per set

    def template(self, sections: frozenset[str] | None) -> compose.MessageTemplate | None:
        chosen = self.edition.for_sections(sections)
        if not chosen:
            return None
        slugs = tuple(s.slug for s in chosen)
        if slugs not in self._templates:
            rendered = compose.render(
                self.edition,
                chosen,
                newsletter=self.ctx.newsletter,
                lst=self.lst,
                base_url=self.ctx.settings.base_url,
                env=self.env,
            )
            self.notes[slugs] = rendered.notes
            self._templates[slugs] = compose.prepare(
                rendered,
                self.edition,
                newsletter=self.ctx.newsletter,
                lst=self.lst,
                base_url=self.ctx.settings.base_url,
                date=self.now,
            )
        return self._templates[slugs]

    def message(self, subscriber: Subscriber) -> OutgoingMessage | None:
        template = self.template(subscriber.sections)
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
