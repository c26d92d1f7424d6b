"""Selection is pure: these tests build articles by hand and check what makes an edition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from digest.config import SectionConfig
from digest.models import Article, Curation
from digest.periods import edition_key
from digest.selection import is_stale, select_edition, window_start
from tests.support.stories import report
from tests.support.values import NOW

SECTIONS = (
    SectionConfig(slug="military-space", title="Military Space", max_articles=3),
    SectionConfig(slug="internet-space", title="Internet Space", max_articles=3),
)


def art(
    n: int,
    section: str = "military-space",
    *,
    hours_ago: float = 1,
    published_hours_ago: float | None = None,
    url: str | None = None,
) -> Article:
    seen = NOW - timedelta(hours=hours_ago)
    published = None if published_hours_ago is None else NOW - timedelta(hours=published_hours_ago)
    return Article(
        id=n,
        key=f"guid:{n}",
        section=section,
        title=f"Story {n}",
        url=url or f"https://news.example/{n}",
        first_seen_at=seen,
        published_at=published,
    )


def pick(candidates, *, already_sent=(), since=None, sections=SECTIONS, **more):
    """The daily list's edition of 2026-11-26 from ``candidates`` (``more``: curation,
    chosen, max_age_hours), or None."""
    return select_edition(
        list_name="daily",
        key="2026-11-26",
        sections=sections,
        candidates=candidates,
        already_sent=set(already_sent),
        since=since or NOW - timedelta(hours=24),
        now=NOW,
        **more,
    )


def keys(edition, slug):
    return [a.id for s in edition.sections if s.slug == slug for a in s.articles]


def test_edition_key_is_the_date_in_the_lists_time_zone():
    late_evening_utc = datetime(2026, 11, 26, 3, 30, tzinfo=UTC)
    assert edition_key(late_evening_utc, ZoneInfo("America/New_York")) == "2026-11-25"
    assert edition_key(late_evening_utc, ZoneInfo("Asia/Seoul")) == "2026-11-26"


def test_window_first_edition_then_since_previous():
    assert window_start(NOW, None, 24) == NOW - timedelta(hours=24)
    previous = NOW - timedelta(hours=20)
    assert window_start(NOW, previous, 24) == previous


def test_newest_first_and_capped_per_section():
    edition = pick(
        [
            art(1, published_hours_ago=5),
            art(2, published_hours_ago=1),
            art(3, published_hours_ago=3),
            art(4, published_hours_ago=4),
            art(5, "internet-space"),
        ]
    )
    assert keys(edition, "military-space") == [2, 3, 4]
    assert keys(edition, "internet-space") == [5]
    assert [s.slug for s in edition.sections] == ["military-space", "internet-space"]
    assert edition.sections[0].title == "Military Space"


def test_undated_articles_sort_by_first_seen():
    edition = pick([art(1, hours_ago=3), art(2, hours_ago=1), art(3, hours_ago=2)])
    assert keys(edition, "military-space") == [2, 3, 1]


def test_never_an_article_already_sent():
    edition = pick([art(1), art(2)], already_sent={"guid:1"})
    assert keys(edition, "military-space") == [2]


def test_only_articles_first_seen_in_the_window():
    edition = pick([art(1, hours_ago=30), art(2, hours_ago=2)])
    assert keys(edition, "military-space") == [2]


def test_same_story_in_one_section_only():
    same = "https://news.example/shared-story"
    edition = pick(
        [
            art(1, "military-space", url=same),
            art(2, "internet-space", url=same + "/"),
            art(3, "internet-space"),
        ]
    )
    assert keys(edition, "military-space") == [1]
    assert keys(edition, "internet-space") == [3]


def test_sections_with_nothing_new_are_left_out():
    edition = pick([art(1, "internet-space")])
    assert [s.slug for s in edition.sections] == ["internet-space"]


def test_nothing_new_means_no_edition():
    assert pick([]) is None
    assert pick([art(1)], already_sent={"guid:1"}) is None


def test_articles_of_other_sections_are_ignored():
    assert pick([art(1, "launch-pad")]) is None


def test_for_sections_filters_a_subscribers_preferences():
    edition = pick([art(1), art(2, "internet-space")])
    assert [s.slug for s in edition.for_sections(frozenset({"internet-space"}))] == [
        "internet-space"
    ]
    assert len(edition.for_sections(None)) == 2
    assert edition.for_sections(frozenset({"launch-pad"})) == ()


# -- the editor's curation ------------------------------------------------------------------


def curated(candidates, curation, chosen=(), *, already_sent=()):
    edition = pick(candidates, already_sent=already_sent, curation=curation, chosen=chosen)
    assert edition is not None
    return {s.slug: [a.id for a in s.articles] for s in edition.sections}


FOUR = [art(1, hours_ago=1), art(2, hours_ago=2), art(3, hours_ago=3), art(4, hours_ago=4)]


def test_a_chosen_lead_comes_first_even_from_outside_the_window():
    old = art(9, hours_ago=100)
    got = curated(FOUR, Curation(leads=(9,)), chosen=[old])
    assert got["military-space"] == [9, 1, 2]


def test_the_latest_lead_of_a_section_wins_and_the_earlier_gives_way():
    got = curated(FOUR, Curation(leads=(3, 2)), chosen=[FOUR[2], FOUR[1]])
    assert got["military-space"] == [2, 1, 3]  # 3 is back among the new, by recency


def test_pins_follow_the_lead_and_the_cap_still_holds():
    got = curated(FOUR, Curation(leads=(2,), pins=(4,)), chosen=[FOUR[1], FOUR[3]])
    assert got["military-space"] == [2, 4, 1]


def test_a_dropped_article_is_replaced_by_the_next_newest():
    assert curated(FOUR, Curation(drops=(1,)))["military-space"] == [2, 3, 4]


def test_moves_apply_last_in_order_and_clamp_to_the_section():
    got = curated(FOUR, Curation(moves=((1, 3), (3, 1), (2, 99))))
    assert got["military-space"] == [3, 1, 2]


def test_curation_never_brings_back_an_article_already_mailed():
    got = curated(FOUR, Curation(pins=(9,)), chosen=[art(9)], already_sent={"guid:9"})
    assert 9 not in got["military-space"]


def test_a_pinned_article_claims_its_story_in_every_section():
    same = art(7, "internet-space", url="https://news.example/1")
    got = curated([*FOUR, same], Curation(pins=(7,)), chosen=[same])
    assert got["internet-space"] == [7] and 1 not in got["military-space"]


def test_an_uncurated_draft_is_a_draft_with_empty_curation():
    edition = pick(FOUR)
    assert edition is not None and not edition.frozen and not edition.curation


# -- freshness ------------------------------------------------------------------------------


def fresh(candidates, max_age_hours, sections=SECTIONS, curation=None, chosen=()):
    edition = pick(
        candidates,
        sections=sections,
        curation=curation,
        chosen=chosen,
        max_age_hours=max_age_hours,
    )
    return [] if edition is None else [a.id for s in edition.sections for a in s.articles]


def test_an_article_already_old_when_first_seen_is_never_selected():
    backlog = art(1, hours_ago=1, published_hours_ago=24 * 365 * 10)  # a feed's archive
    news = art(2, hours_ago=1, published_hours_ago=30)
    undated = art(3, hours_ago=1)
    assert fresh([backlog, news, undated], 48) == [3, 2]
    assert fresh([backlog, news, undated], 24) == [3]  # 29 hours old when first seen
    assert fresh([backlog, news, undated], 0) == [3, 2, 1]  # 0: no limit
    assert is_stale(backlog, 168) and not is_stale(undated, 1)


def test_a_section_may_set_its_own_age_limit():
    relaxed = (SectionConfig(slug="military-space", title="M", max_age_hours=0), SECTIONS[1])
    backlog = art(1, hours_ago=1, published_hours_ago=1000)
    assert fresh([backlog], 24, sections=relaxed) == [1]


def test_the_editor_may_still_pin_an_old_article():
    backlog = art(1, hours_ago=1, published_hours_ago=1000)
    assert fresh([backlog], 24, curation=Curation(pins=(1,)), chosen=[backlog]) == [1]


# -- one story once, ranked ------------------------------------------------------------------


def wire(n: int, side: str, section: str, hours_ago: float, article_id: int) -> Article:
    """A labelled rewrite filed under ``section``, first seen ``hours_ago``."""
    return report(
        n,
        side,
        id=article_id,
        section=section,
        first_seen_at=NOW - timedelta(hours=hours_ago),
    )


def edition_of(candidates, curation=None, chosen=()):
    edition = pick(candidates, curation=curation, chosen=chosen)
    assert edition is not None
    return {s.slug: s for s in edition.sections}


def test_a_story_from_two_feeds_shows_once_in_the_section_of_its_newest_report():
    older = wire(2, "a", "military-space", hours_ago=3, article_id=1)
    newer = wire(2, "b", "internet-space", hours_ago=1, article_id=2)
    got = edition_of([older, newer, art(3, hours_ago=2)])
    assert [a.id for a in got["internet-space"].articles] == [2]
    assert got["internet-space"].also_for(newer) == (older,)
    assert [a.id for a in got["military-space"].articles] == [3]


def test_the_same_link_twice_is_one_story_with_no_also_link():
    same = "https://news.example/shared-story"
    got = edition_of([art(1, url=same), art(2, "internet-space", url=same + "/", hours_ago=2)])
    assert list(got) == ["military-space"] and got["military-space"].also == {}


def test_a_pinned_report_leads_its_story_and_the_newer_one_becomes_its_also_link():
    pinned = wire(2, "a", "military-space", hours_ago=30, article_id=1)
    newer = wire(2, "b", "internet-space", hours_ago=1, article_id=2)
    got = edition_of([newer], Curation(pins=(1,)), chosen=[pinned])
    assert [a.id for a in got["military-space"].articles] == [1]
    assert got["military-space"].also_for(pinned) == (newer,)
    assert "internet-space" not in got


def test_dropping_one_report_drops_the_story_whichever_site_carried_it():
    first = wire(2, "a", "military-space", hours_ago=3, article_id=1)
    second = wire(2, "b", "military-space", hours_ago=1, article_id=2)
    got = edition_of([first, second, art(3, hours_ago=2)], Curation(drops=(1,)))
    assert [a.id for a in got["military-space"].articles] == [3]


def test_a_story_carried_by_two_sites_ranks_above_newer_single_reports():
    wide = [wire(4, "a", "military-space", 5, 41), wire(4, "b", "military-space", 6, 42)]
    got = edition_of([art(1, hours_ago=1), art(2, hours_ago=2), *wide])
    assert [a.id for a in got["military-space"].articles] == [41, 1, 2]
