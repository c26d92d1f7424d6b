"""Per-message cost of composing: personalize() after the one-time render, versus a full
render + inline per message. Prints JSON.

    .venv/bin/python benchmarks/compose.py [--subscribers 10000] [--layout rich|compact]

The edition is 8 sections x 8 articles with long summaries and images. Subscribers get a
mix of section preferences (every section, or one of a few common subsets); each distinct
set is rendered, inlined and encoded once (``render_prepare`` below), then every subscriber's
message is ``personalize``d. The ratio is personalize per message over render+inline+prepare
per message; the design bar is 0.01 or less.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.compose import Recipient, make_environment, personalize, prepare, render  # noqa: E402
from digest.config import load_newsletter  # noqa: E402
from digest.models import Article, Edition, Section  # noqa: E402

NOW = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
BASE = "https://news.orbital-dispatch.example"
SECRET = b"benchmark-secret-key-0123456789abcdef"


def long_edition() -> Edition:
    summary = (
        "The agency said the satellites reached their planned orbit and began sending "
        "data within hours, a milestone for a programme that has faced repeated delays "
        "and rising costs since it began. "
    ) * 4
    sections = tuple(
        Section(
            f"section-{i}",
            f"Section number {i} of the day",
            tuple(
                Article(
                    key=f"{i}-{n}",
                    section=f"section-{i}",
                    summary=summary,
                    title=f"A long headline about orbital matters and launches, story {n} of {i}",
                    url=f"{BASE}/section-{i}/2026/11/26/a-long-article-slug-for-story-{n}.html",
                    image=f"https://img.orbital-dispatch.example/2026/11/26/section-{i}/{n}.jpg",
                    byline="Ana Reporter-Longname",
                    dateline="Washington (AFP) Nov 25, 2026",
                    published_at=NOW - timedelta(hours=n),
                )
                for n in range(8)
            ),
        )
        for i in range(8)
    )
    return Edition("daily", "2026-11-26", NOW, sections, id=88)


def preferences(count: int, slugs: list[str]) -> list[frozenset[str] | None]:
    rng = random.Random(8)
    subsets = [None] + [
        frozenset(rng.sample(slugs, rng.randint(1, len(slugs) - 1))) for _ in range(11)
    ]
    weights = [40] + [5] * 11
    return rng.choices(subsets, weights=weights, k=count)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--layout", choices=("rich", "compact"), default="rich")
    args = parser.parse_args()
    newsletter = load_newsletter(ROOT / "digest.toml")
    lst = newsletter.get_list("daily").model_copy(update={"layout": args.layout})
    env = make_environment()
    edition = long_edition()
    prefs = preferences(args.subscribers, [s.slug for s in edition.sections])

    def render_prepare(sections):
        rendered = render(edition, sections, newsletter=newsletter, lst=lst, base_url=BASE, env=env)
        return prepare(
            rendered, edition, newsletter=newsletter, lst=lst, base_url=BASE, date=NOW
        ), rendered

    render_prepare(edition.sections)  # warm Jinja's template cache, as a real run has
    full = []
    for _ in range(15):
        started = time.perf_counter()
        _, rendered = render_prepare(edition.sections)
        full.append(time.perf_counter() - started)

    templates, started = {}, time.perf_counter()
    for chosen in set(prefs):
        templates[chosen] = render_prepare(edition.for_sections(chosen))[0]
    one_time = time.perf_counter() - started

    size, started = 0, time.perf_counter()
    for index, chosen in enumerate(prefs):
        message = personalize(
            templates[chosen],
            Recipient(index + 1, f"reader{index}@example.com", "A Reader"),
            secret=SECRET,
        )
        size += len(message.raw)
    personalize_total = time.perf_counter() - started

    per_full = statistics.median(full)
    per_message = personalize_total / args.subscribers
    print(
        json.dumps(
            {
                "layout": args.layout,
                "subscribers": args.subscribers,
                "section_sets": len(templates),
                "html_bytes_full_edition": len(rendered.html.encode()),
                "full_render_inline_prepare_ms": round(per_full * 1000, 3),
                "personalize_per_message_ms": round(per_message * 1000, 4),
                "ratio": round(per_message / per_full, 5),
                "one_time_renders_s": round(one_time, 3),
                "amortized_per_message_ms": round(
                    (one_time + personalize_total) / args.subscribers * 1000, 4
                ),
                "messages_per_second": round(args.subscribers / personalize_total),
                "mean_message_bytes": size // args.subscribers,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
