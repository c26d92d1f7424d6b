"""Story grouping: precision on the feed corpus, recall on rewritten wire stories, speed.

Prints one JSON object:

- ``precision``: every entry of every feed of the corpus (``--corpus``, default
  ../shared/corpus/feeds) parsed as digest parses it, then grouped together as one day's
  candidates; ``pairs_grouped`` counts the pairs put in one story, ``distinct_grouped`` those
  of them that are distinct stories (not the same link, entry id, or title and summary: the
  corpus holds a few feeds copied by several projects, whose entries are the same stories),
  listed in ``distinct_examples``; ``closest_distinct``: the most similar two distinct
  stories of different sites (the margin below the threshold);
- ``recall``: on the labelled pairs of ``tests/data/stories/rewrites.json`` (one wire story
  as two outlets wrote it), the share grouped;
- ``speed``: seconds to group 10,000 candidate articles (a synthetic day: words drawn from a
  Zipf law, one in five a rewrite of an earlier one by another site), median and spread of
  3 runs (wall clock, and the process's own CPU time), with the load average before the
  runs.

Usage: python benchmarks/selection.py [--corpus DIR] [--articles 10000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.errors import FeedError
from digest.feeds.parse import parse
from digest.models import Article
from digest.stories import (
    MIN_WORDS,
    SIMILARITY,
    group_reports,
    host,
    same_page,
    similarity,
    words,
)

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def corpus_articles(folder: Path) -> list[Article]:
    articles: list[Article] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".md"):
        try:
            feed = parse(path.read_bytes(), source=str(path), section="news", now=NOW)
        except FeedError:
            continue
        articles.extend(feed.articles)
    return articles


def same_story(first: Article, second: Article) -> bool:
    """What the corpus itself says is one story: the same link, id, or words."""
    return (
        (bool(first.url) and same_page(first.url) == same_page(second.url))
        or first.key == second.key
        or (first.title, first.summary) == (second.title, second.summary)
    )


def precision(folder: Path) -> dict:
    articles = corpus_articles(folder)
    pairs = distinct = 0
    examples: list[list[str]] = []
    for story in group_reports(articles):
        for first, second in itertools.combinations(story.reports, 2):
            pairs += 1
            if not same_story(first, second):
                distinct += 1
                examples.append([f"{first.title} <{first.url}>", f"{second.title} <{second.url}>"])
    return {
        "articles": len(articles),
        "closest_distinct": closest_distinct(articles),
        "pairs_grouped": pairs,
        "distinct_grouped": distinct,
        "precision": round((pairs - distinct) / pairs, 4) if pairs else 1.0,
        "distinct_examples": examples[:10],
    }


def closest_distinct(articles: list[Article]) -> dict:
    """The margin: the most similar two distinct stories of different sites, both long
    enough to be compared, against the threshold."""
    texts = [(article, words(article), host(article.url)) for article in articles]
    texts = [t for t in texts if len(t[1]) >= MIN_WORDS]
    best = (0.0, "", "")
    for (first, a, site_a), (second, b, site_b) in itertools.combinations(texts, 2):
        if site_a == site_b or same_story(first, second):
            continue
        score = similarity(a, b)
        if score > best[0]:
            best = (score, first.title, second.title)
    return {"similarity": round(best[0], 3), "threshold": SIMILARITY, "titles": best[1:]}


def labelled_pairs() -> list[tuple[Article, Article]]:
    rows = json.loads((ROOT / "tests/data/stories/rewrites.json").read_text())
    return [
        tuple(  # type: ignore[misc]
            Article(key=row[side]["url"], section="news", **row[side]) for side in ("a", "b")
        )
        for row in rows
    ]


def recall() -> dict:
    pairs = labelled_pairs()
    grouped = sum(len(group_reports([a, b])) == 1 for a, b in pairs)
    # All the pairs' reports at once, as one day's candidates: still each with its own pair.
    together = group_reports([article for pair in pairs for article in pair])
    exact = sum(
        {a.key for a in story.reports} in ({a.key, b.key} for a, b in pairs) for story in together
    )
    return {
        "pairs": len(pairs),
        "grouped": grouped,
        "recall": round(grouped / len(pairs), 3),
        "stories_exactly_right_when_mixed": exact,
    }


def synthetic_day(count: int, seed: int = 15) -> list[Article]:
    rng = random.Random(seed)
    vocabulary = [f"w{n}" for n in range(100_000)]
    weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(vocabulary))))
    articles: list[Article] = []
    for n in range(count):
        site = f"https://site{rng.randrange(300)}.example"
        if articles and rng.random() < 0.2:
            original = rng.choice(articles)
            text = original.summary.split()
            for i in rng.sample(range(len(text)), len(text) // 5):
                text[i] = rng.choices(vocabulary, cum_weights=weights)[0]
            title, summary = " ".join(rng.sample(text, 8)), " ".join(text)
        else:
            title = " ".join(rng.choices(vocabulary, cum_weights=weights, k=9))
            summary = " ".join(rng.choices(vocabulary, cum_weights=weights, k=45))
        articles.append(
            Article(
                key=f"{site}/{n}",
                section="news",
                title=title,
                url=f"{site}/story/{n}",
                summary=summary,
                first_seen_at=NOW - timedelta(minutes=n),
            )
        )
    return articles


def speed(count: int) -> dict:
    articles = synthetic_day(count)
    load = os.getloadavg()
    runs, cpu = [], []
    for _ in range(3):
        start, start_cpu = time.perf_counter(), time.process_time()
        stories = group_reports(articles)
        runs.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {
        "articles": count,
        "stories": len(stories),
        "median_s": round(statistics.median(runs), 3),
        "spread_s": round(max(runs) - min(runs), 3),
        "runs_s": [round(r, 3) for r in runs],
        # On a shared machine the wall clock counts other processes' turns too.
        "cpu_median_s": round(statistics.median(cpu), 3),
        "load_average": [round(v, 2) for v in load],
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    corpus = next(
        (p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()),
        ROOT.parent / "shared",
    )
    parser.add_argument("--corpus", type=Path, default=corpus / "corpus/feeds")
    parser.add_argument("--articles", type=int, default=10_000)
    args = parser.parse_args()
    result = {
        "precision": precision(args.corpus),
        "recall": recall(),
        "speed": speed(args.articles),
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
