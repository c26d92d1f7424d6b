"""Drafts and freezing in the store, on both engines: a draft holds curation only; freezing
fixes the articles and fills the ledger in one transaction, or changes nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from digest.models import (
    Article,
    Curation,
    DeliveryState,
    Edition,
    EditionState,
    NewSubscriber,
    Section,
)
from tests.support.values import NOW

KEY = "2026-11-26"


def _draft(store) -> Edition:
    store.ensure_lists([("daily", "Daily")])
    store.sync_sections([("launch-pad", "Launch Pad", ["/feeds/x.xml"])])
    items = [
        Article(key=f"guid:{i}", section="launch-pad", title=f"T{i}", url=f"https://x/{i}")
        for i in range(3)
    ]
    store.save_articles(items, NOW)
    stored = store.articles(section="launch-pad")
    return Edition(
        list_name="daily",
        key=KEY,
        created_at=NOW,
        sections=(Section("launch-pad", "Launch Pad", tuple(stored[:2])),),
        state=EditionState.draft,
        curation=Curation(pins=(stored[0].id,), note="Hello"),
    )


def _table_count(store, table: str) -> int:
    with store.engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_freezing_with_no_recipient_changes_nothing(store):
    draft = _draft(store)
    assert store.save_curation("daily", KEY, draft.curation, NOW) is None
    assert store.freeze_edition(draft, NOW) is None
    kept = store.edition("daily", KEY)
    assert kept is not None and kept.state is EditionState.draft and kept.sections == ()
    assert kept.curation == draft.curation
    assert (_table_count(store, "edition_articles"), _table_count(store, "deliveries")) == (0, 0)


def test_freezing_fixes_the_articles_fills_the_ledger_and_keeps_the_curation(store):
    draft = _draft(store)
    store.save_curation("daily", KEY, draft.curation, NOW)
    store.add_subscribers([NewSubscriber(email="a@example.org", lists=("daily",))], NOW)
    frozen = store.freeze_edition(draft, NOW + timedelta(minutes=5))
    assert frozen is not None and frozen.state is EditionState.sending
    assert frozen.sections == draft.sections and frozen.curation == draft.curation
    assert frozen.frozen_at == NOW + timedelta(minutes=5)
    assert store.counts(frozen.stored_id) == {DeliveryState.queued: 1}
    # Frozen: curation is refused, a second freeze returns the frozen edition unchanged.
    assert store.save_curation("daily", KEY, Curation(), NOW) is EditionState.sending
    assert store.freeze_edition(draft, NOW + timedelta(hours=1)) == frozen
    # The next edition's window opens when this one was frozen, not when it was drafted.
    assert store.previous_edition_time("daily", "2026-11-27") == NOW + timedelta(minutes=5)


def test_a_draft_is_not_a_previous_edition_and_its_articles_are_not_sent(store):
    draft = _draft(store)
    store.save_curation("daily", KEY, draft.curation, NOW)
    assert store.previous_edition_time("daily", "2026-11-27") is None
    assert store.sent_article_keys("daily") == set()
    assert store.edition_record("daily") is None  # `send --status` has no edition to show


def test_an_edition_frozen_before_anything_was_queued_can_become_a_draft_again(store):
    draft = _draft(store)
    legacy = store.create_edition(draft)  # frozen, ledger not filled: state open
    assert legacy.state is EditionState.open
    assert store.reopen_edition("daily", KEY)
    again = store.edition("daily", KEY)
    assert again is not None and again.state is EditionState.draft and again.sections == ()
    store.add_subscribers([NewSubscriber(email="a@example.org", lists=("daily",))], NOW)
    frozen = store.freeze_edition(draft, NOW)
    assert frozen is not None and not store.reopen_edition("daily", KEY)


def test_the_overview_counts_each_editions_ledger(store):
    draft = _draft(store)
    store.add_subscribers(
        [NewSubscriber(email=f"r{i}@example.org", lists=("daily",)) for i in range(3)], NOW
    )
    frozen = store.freeze_edition(draft, NOW)
    assert frozen is not None
    store.save_curation("daily", "2026-11-27", Curation(note="Tomorrow"), NOW)
    rows = store.editions_overview("daily")
    assert [(r["key"], r["state"], r["articles"], r["recipients"]) for r in rows] == [
        ("2026-11-27", "draft", 0, 0),
        (KEY, "sending", 2, 3),
    ]
    assert rows[0]["curated"] and rows[1]["curated"]
