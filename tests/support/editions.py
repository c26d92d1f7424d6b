"""Editions built by hand and composed into messages, as the compose, check, browser and
wire tests use them: the sample newsletter's sections with made-up articles, the golden
edition, and the 8 x 8 size test."""

from __future__ import annotations

from datetime import timedelta
from email import policy
from email.parser import BytesParser

from digest.compose import prepare, render
from digest.models import Article, Edition, Section
from tests.support.values import NOW

# The base URL of the composed messages' links.
BASE = "https://news.orbital-dispatch.example"


# The email's layouts (``layout`` in a list of digest.toml), the default first.
EMAIL_LAYOUTS = ("rich", "compact")


def article(section: str, n: int, **changes) -> Article:
    fields = dict(
        key=f"{section}-{n}",
        section=section,
        id=1000 + n,
        title=f"{section.replace('-', ' ').title()} story {n}: satellites, drones and launches",
        url=f"https://news.orbital-dispatch.example/{section}/story-{n}.html",
        summary=(
            "A short summary of the story that tells the reader what happened, "
            "where and why it matters. "
        )
        * 2,
        published_at=NOW - timedelta(hours=n + 1),
        first_seen_at=NOW - timedelta(hours=n),
    )
    fields.update(changes)
    return Article(**fields)


def make_edition(newsletter, per_section: int = 6, **lead_changes) -> Edition:
    sections = tuple(
        Section(
            slug=s.slug,
            title=s.title,
            articles=tuple(
                article(s.slug, n, **(lead_changes if n == 0 else {})) for n in range(per_section)
            ),
        )
        for s in newsletter.sections
    )
    return Edition(list_name="daily", key="2026-11-26", created_at=NOW, sections=sections, id=7)


def render_edition(edition, newsletter, lst, env, sections=None):
    """The edition (or only ``sections`` of it) rendered for ``lst`` with links to BASE."""
    return render(
        edition,
        sections or edition.sections,
        newsletter=newsletter,
        lst=lst,
        base_url=BASE,
        env=env,
    )


def compose(edition, newsletter, lst, env, sections=None):
    """The edition rendered and prepared: (rendered, message template)."""
    rendered = render_edition(edition, newsletter, lst, env, sections)
    template = prepare(rendered, edition, newsletter=newsletter, lst=lst, base_url=BASE, date=NOW)
    return rendered, template


def parse(raw: bytes):
    return BytesParser(policy=policy.default).parsebytes(raw)


def bodies(message) -> tuple[str, str]:
    plain, html_part = message.iter_parts()
    return (
        plain.get_content().replace("\r\n", "\n"),
        html_part.get_content().replace("\r\n", "\n"),
    )


def long_edition() -> Edition:
    """8 sections x 8 articles, long summaries, an image on every article: the size test."""
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
                article(
                    f"section-{i}",
                    n,
                    summary=summary,
                    byline="Ana Reporter-Longname",
                    title=f"A long headline about orbital matters and launches, story {n} of {i}",
                    dateline="Washington (AFP) Nov 25, 2026",
                    url=f"https://news.orbital-dispatch.example/section-{i}/2026/11/26/"
                    f"a-long-article-slug-for-the-story-number-{n}.html",
                    image=f"https://img.orbital-dispatch.example/2026/11/26/section-{i}/{n}.jpg",
                )
                for n in range(8)
            ),
        )
        for i in range(8)
    )
    return Edition("daily", "2026-11-26", NOW, sections, id=88)


def golden_edition(newsletter) -> Edition:
    lead = dict(
        dateline="São Paulo (AFP) Nov 25, 2026",
        byline="Zoë Ribeiro",
        image="https://img.orbital-dispatch.example/2026/11/lead.jpg",
        title="Brazil’s first polar orbit launch “a complete success”",  # noqa: RUF001 typographic quotes
        summary="The rocket lifted off at dawn and placed two small Earth-observation "
        "satellites into orbit, the agency said; the next flight is due in spring.",
    )
    sections = []
    for index, s in enumerate(newsletter.sections[:3]):
        first = article(s.slug, 0, **lead) if index == 0 else article(s.slug, 0, byline="Staff")
        articles = [first] + [article(s.slug, n) for n in range(1, 4)]
        if index == 0:  # the rich layout's thumbnails: one of known size, one of unknown
            articles[1] = article(
                s.slug, 1, image=f"https://img.orbital-dispatch.example/{s.slug}-1.jpg"
            )
            articles[2] = article(
                s.slug,
                2,
                image=f"https://img.orbital-dispatch.example/{s.slug}-2.jpg",
                image_width=640,
                image_height=427,
            )
        sections.append(Section(s.slug, s.title, tuple(articles)))
    return Edition("daily", "2026-11-26", NOW, tuple(sections), id=42)
