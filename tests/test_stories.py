"""Stories are pure: reports of one story grouped (the same page, or the same wire text
rewritten by another site), and a section's stories ranked. Articles built by hand and the
labelled rewrites of tests/data/stories (see its SOURCES.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from digest.models import Article
from digest.stories import Story, group_reports, host, rank_stories, same_page
from tests.support.stories import REWRITES, report
from tests.support.values import NOW


def item(n: int, url: str, title: str, summary: str = "", **changes) -> Article:
    return Article(
        id=n,
        key=f"guid:{n}",
        section="news",
        title=title,
        url=url,
        summary=summary,
        first_seen_at=NOW - timedelta(hours=changes.pop("hours_ago", 1)),
        **changes,
    )


def test_a_wire_story_rewritten_by_another_site_is_one_story_led_by_the_first_given():
    first, second = report(0), report(0, "b")
    [story] = group_reports([first, second])
    assert story.lead == first and story.also == (second,)
    [story] = group_reports([second, first])
    assert story.lead == second and story.also == (first,)


def test_most_labelled_rewrites_are_grouped_and_mixed_together_each_keeps_its_own_pair():
    pairs = [(report(n), report(n, "b")) for n in range(len(REWRITES))]
    grouped = sum(len(group_reports(pair)) == 1 for pair in pairs)
    assert grouped >= 0.9 * len(pairs)
    mixed = group_reports([article for pair in pairs for article in pair])
    pair_of = {article.id: n for n, pair in enumerate(pairs) for article in pair}
    for story in mixed:
        assert len({pair_of[a.id] for a in story.reports}) == 1, story


def test_different_stories_sharing_a_subject_stay_apart():
    # Two launches on the same day: the same rocket, pad and agency, different missions.
    launch = item(
        1,
        "https://a.example/launch-1",
        "Falcon 9 launches 24 Starlink satellites from Cape Canaveral",
        "A SpaceX Falcon 9 rocket launched 24 Starlink internet satellites from Cape "
        "Canaveral Space Force Station on Tuesday morning, and the first stage landed on a "
        "drone ship in the Atlantic.",
    )
    other = item(
        2,
        "https://b.example/launch-2",
        "Falcon 9 launches Space Force GPS satellite from Cape Canaveral",
        "A SpaceX Falcon 9 rocket launched a GPS III navigation satellite for the U.S. Space "
        "Force from Cape Canaveral on Tuesday evening; the booster was expended.",
    )
    assert len(group_reports([launch, other])) == 2


def test_one_site_never_has_two_reports_of_one_story_under_two_links():
    first = report(3)
    again = report(3, "b", url=first.url + "-updated")
    assert host(first.url) == host(again.url)
    assert len(group_reports([first, again])) == 2


def test_the_same_page_is_one_story_whatever_its_words_scheme_or_www():
    first = item(1, "https://www.news.example/story/", "Launch moved to Friday")
    second = item(2, "http://news.example/story", "Weather delays the launch")
    [story] = group_reports([first, second])
    assert story.reports == (first, second)
    assert same_page(first.url) == same_page(second.url) == "news.example/story"


def test_a_bare_headline_is_grouped_by_its_link_only():
    # Too few words to tell stories apart: "Weekly update" headlines of two sites.
    first = item(1, "https://a.example/weekly", "Weekly update: launches and landings")
    second = item(2, "https://b.example/weekly", "Weekly update: launches and landings")
    assert len(group_reports([first, second])) == 2


def test_a_report_joins_the_story_whose_lead_it_resembles_never_a_chain_of_them():
    def words(*names: str) -> str:
        return " ".join(names)

    shared = ["kestrel", "harbor", "quartz", "ember", "falcon", "meadow", "saffron"]
    own = ["tundra", "violet", "walnut", "thistle", "osprey"]
    lead = item(
        1, "https://a.example/1", words(*shared, "lantern", "orchid", "pepper", "ivy", "fig")
    )
    # 7 of 17 words in common with the lead: the same story.
    rewrite = item(2, "https://b.example/2", words(*shared, *own))
    # 8 of 16 in common with the rewrite, 3 of 21 with the lead: another story.
    drifted = item(
        3,
        "https://c.example/3",
        words(*shared[4:], *own, "yarrow", "zephyr", "bramble", "cobalt"),
    )
    assert [s.reports for s in group_reports([lead, rewrite, drifted])] == [
        (lead, rewrite),
        (drifted,),
    ]


def test_grouping_is_the_same_at_every_call():
    articles = [report(n, side) for n in range(len(REWRITES)) for side in "ab"]
    assert group_reports(articles) == group_reports(list(articles))


# -- ranking --------------------------------------------------------------------------------


def carried(n: int, *, sources: int = 1, hours_ago: float = 1) -> Story:
    lead = item(n, f"https://site0.example/{n}", f"Story {n}", hours_ago=hours_ago)
    also = tuple(
        item(n * 100 + k, f"https://site{k}.example/{n}", f"Story {n}", hours_ago=hours_ago)
        for k in range(1, sources)
    )
    return Story(lead, also)


def lead_ids(stories) -> list[int | None]:
    return [s.lead.id for s in stories]


def test_stories_carried_by_more_sites_rank_first_then_the_newest():
    stories = [carried(1, hours_ago=1), carried(2, sources=3, hours_ago=5), carried(3, hours_ago=2)]
    stories.append(carried(4, sources=3, hours_ago=2))
    assert lead_ids(rank_stories(stories)) == [4, 2, 1, 3]


def test_the_editors_lead_then_pins_in_order_come_before_any_story_however_widely_carried():
    stories = [carried(1, sources=5), carried(2), carried(3), carried(4, hours_ago=9)]
    assert lead_ids(rank_stories(stories, leads={3}, pins=[4, 2])) == [3, 4, 2, 1]


def test_reports_of_one_site_count_as_one_source():
    lead = item(1, "https://www.a.example/1", "Story")
    same_site = item(2, "https://a.example/1-again", "Story")
    assert Story(lead, (same_site,)).sources == 1
    assert carried(5, sources=3).sources == 3


@pytest.mark.parametrize(
    ("url", "site"),
    [
        ("https://www.Example.COM/x", "example.com"),
        ("http://news.example:8080/a?b", "news.example"),
        ("https://[::1/broken", ""),
        ("", ""),
    ],
)
def test_a_sites_name_is_its_host_without_www(url, site):
    assert host(url) == site
