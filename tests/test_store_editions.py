"""Drafts and freezing in the store, on both engines: a draft holds curation only; freezing
fixes the articles and fills the ledger in one transaction, or changes nothing."""

from __future__ import annotations

from dataclasses import replace
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


def _grouped_draft(store) -> Edition:
    """A draft whose lead story has two other reports ("Also:" links), the second article
    one."""
    draft = _draft(store)
    store.save_articles(
        [
            Article(key=f"wire:{i}", section="launch-pad", title=f"W{i}", url=f"https://w{i}/")
            for i in range(3)
        ],
        NOW,
    )
    wire = [a for a in store.articles(section="launch-pad") if a.key.startswith("wire:")]
    section = draft.sections[0]
    lead, second = section.articles
    also = {lead.key: (wire[0], wire[1]), second.key: (wire[2],)}
    return replace(draft, sections=(replace(section, also=also),))


def test_a_frozen_edition_keeps_the_other_reports_of_its_stories(store):
    draft = _grouped_draft(store)
    store.add_subscribers([NewSubscriber(email="a@example.org", lists=("daily",))], NOW)
    frozen = store.freeze_edition(draft, NOW)
    assert frozen is not None and frozen.sections == draft.sections
    [section] = frozen.sections
    lead, second = section.articles
    assert [a.key for a in section.also_for(lead)] == [
        a.key for a in draft.sections[0].also[lead.key]
    ]
    assert len(section.also_for(lead)) == 2 and len(section.also_for(second)) == 1
    # Read again (a resumed send): the same, and the reports count as mailed, not as shown.
    assert store.edition("daily", KEY) == frozen
    shown = {lead.key, second.key}
    assert store.sent_article_keys("daily") == shown | {"wire:0", "wire:1", "wire:2"}
    assert store.editions_overview("daily")[0]["articles"] == 2


def test_a_database_from_before_also_links_gains_them(db_url):
    from sqlalchemy import inspect

    from digest.store import open_store

    store = open_store(db_url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE edition_articles DROP COLUMN also_for")
        conn.exec_driver_sql("DELETE FROM schema_migrations WHERE version = 13")
    store.close()
    upgraded = open_store(db_url)
    columns = {c["name"] for c in inspect(upgraded.engine).get_columns("edition_articles")}
    assert "also_for" in columns
    draft = _grouped_draft(upgraded)
    upgraded.add_subscribers([NewSubscriber(email="a@example.org", lists=("daily",))], NOW)
    frozen = upgraded.freeze_edition(draft, NOW)
    assert frozen is not None and frozen.sections == draft.sections
    upgraded.close()
