"""Rendering: an edition's sections -> subject, preheader, inlined HTML and plain text.

Pure: everything comes in as arguments. Templates see only a plain view of the data (dicts
of strings, built here), so formatting, trimming and scrubbing happen in one place. The
bodies carry the recipient placeholders of ``digest.compose.placeholders``.

To stay clear of Gmail's clipping (about 102 KB) the inlined HTML must stay under
``HTML_BUDGET``: when it does not, the edition is rendered again with fewer further headlines
per section, then with shorter lead summaries (the plain text follows the same view, so both
parts always say the same). The header and the footer are never trimmed. What was trimmed is
reported in ``RenderedEdition.notes``; if even the tightest view is too big, rendering fails
and says so.
"""

from __future__ import annotations

import string
import textwrap
from datetime import date as Date
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import jinja2
from babel import Locale, UnknownLocaleError
from babel.dates import format_date

from digest import periods
from digest.compose import note as editor_note
from digest.compose import placeholders as ph
from digest.compose.inline import inline_css
from digest.config import ListConfig, Newsletter
from digest.errors import ComposeError
from digest.models import Article, Edition, RenderedEdition, Section
from digest.stories import host

# The default templates travel inside the package (the repository's templates/ folder is
# installed as digest.templates): read where the installed package has them.
TEMPLATES = Path(str(resources.files("digest.templates")))
HTML_BUDGET = 90_000  # bytes of UTF-8 after inlining
TEXT_WIDTH = 78
SUBJECT_MAX = 200
PREHEADER_MIN, PREHEADER_MAX = 40, 150
SUMMARY_CHARS = 600  # a lead summary's length by design, before any trimming
# Tried in order until the HTML fits: (lead summary characters, further headlines per
# section; None keeps them all). Headlines go first, summaries after: a lead story with its
# summary is worth more to a reader than the fifth headline of a section.
TRIMS = (
    (SUMMARY_CHARS, None),
    (SUMMARY_CHARS, 5),
    (SUMMARY_CHARS, 3),
    (SUMMARY_CHARS, 2),
    (280, 2),
    (140, 2),
    (0, 2),
    (0, 0),
)


def make_environment(user_templates: Path | None = None) -> jinja2.Environment:
    """Templates from ``user_templates`` first, then the defaults shipped with the package."""
    loaders: list[jinja2.BaseLoader] = []
    if user_templates is not None:
        loaders.append(jinja2.FileSystemLoader(str(user_templates)))
    loaders.append(jinja2.FileSystemLoader(str(TEMPLATES)))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2", "html"), default_for_string=False, default=False
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    # Template wording goes through gettext (``{{ _("Read more") }}``); until a list's locale
    # installs its catalog, the words are the templates' own.
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    env.filters["wrap"] = wrap
    return env


def wrap(value: str, width: int = TEXT_WIDTH, indent: str = "", first: str | None = None) -> str:
    """Prose wrapped at ``width`` columns (plain-text template filter); ``first`` starts it."""
    return textwrap.fill(
        value,
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_on_hyphens=False,
    )


def render(
    edition: Edition,
    sections: tuple[Section, ...],
    *,
    newsletter: Newsletter,
    lst: ListConfig,
    base_url: str,
    env: jinja2.Environment,
) -> RenderedEdition:
    """The edition composed for one set of sections, before personalization."""
    sections = tuple(s for s in sections if s.articles)
    if not sections:
        raise ComposeError(
            f"edition {edition.key} of {lst.name} has no articles to render",
            "an empty edition is skipped, not sent",
        )
    day = _edition_date(edition, lst)
    locale = _locale(lst.locale)
    subject = make_subject(lst, day, sections[0].articles[0].title)
    preheader = make_preheader(sections, lst)
    css = _source(env, "base.css")
    intro = editor_note.parse(edition.curation.note)
    note = {"html": editor_note.html(intro), "text": editor_note.text(intro)} if intro else None
    for summary_chars, more in TRIMS:
        context = _context(
            newsletter,
            lst,
            locale,
            day,
            subject,
            preheader,
            sections,
            summary_chars,
            more,
            base_url,
            note,
        )
        html = inline_css(_render(env, "digest.html.j2", context), css).rstrip("\n") + "\n"
        if len(html.encode("utf-8")) <= HTML_BUDGET:
            text = _render(env, "digest.txt.j2", context)
            return RenderedEdition(
                tuple(s.slug for s in sections),
                subject,
                preheader,
                html,
                _normalize_text(text),
                notes=trim_notes(sections, summary_chars, more),
            )
    raise ComposeError(
        f"edition {edition.key} of {lst.name} is over {HTML_BUDGET} bytes of HTML "
        "even with summaries left out",
        "lower max_articles of the sections, or shorten the templates",
    )


def trim_notes(
    sections: tuple[Section, ...], summary_chars: int, more: int | None
) -> tuple[str, ...]:
    """What a trim step left out of these sections, in words, one note per kind of cut."""
    notes = []
    dropped = [
        (s.title, len(s.articles) - 1 - more)
        for s in sections
        if more is not None and len(s.articles) - 1 > more
    ]
    if dropped:
        count = sum(n for _, n in dropped)
        names = ", ".join(title for title, _ in dropped[:4])
        if len(dropped) > 4:
            names += f" and {len(dropped) - 4} more"
        notes.append(
            f"to stay under {HTML_BUDGET // 1000} KB of HTML, {count} further "
            f"headline{'s' * (count != 1)} left out ({more} kept per section) in "
            f"{names}"
        )
    if summary_chars < SUMMARY_CHARS:
        cut = sum(1 for s in sections if len(_one_line(s.articles[0].summary)) > summary_chars)
        if cut:
            what = f"shortened to {summary_chars} characters" if summary_chars else "left out"
            notes.append(
                f"to stay under {HTML_BUDGET // 1000} KB of HTML, {cut} lead "
                f"summar{'ies' if cut != 1 else 'y'} {what}"
            )
    return tuple(notes)


def make_subject(lst: ListConfig, day: Date, headline: str) -> str:
    """The list's subject pattern filled in, on one line."""
    fields = {
        "title": lst.title,
        "date": format_date(day, format="long", locale=lst.locale),
        "headline": _one_line(headline),
    }
    for _, field, _, _ in string.Formatter().parse(lst.subject):
        # Only the bare names: "{title.__class__}" and the like must not reach str.format.
        if field is not None and field not in fields:
            raise ComposeError(
                f"lists.{lst.name}.subject: unknown field {{{field}}}",
                "the fields are {title}, {date}, {headline}",
            )
    try:
        subject = lst.subject.format(**fields)
    except (ValueError, IndexError) as exc:
        raise ComposeError(f"lists.{lst.name}.subject: {exc}") from None
    return _shorten(_one_line(ph.scrub(subject)), SUBJECT_MAX)


def make_preheader(sections: tuple[Section, ...], lst: ListConfig) -> str:
    """The inbox preview line: the top headlines, 40 to 150 characters."""
    headlines = [_one_line(s.articles[0].title) for s in sections]
    for section in sections:
        headlines.extend(_one_line(a.title) for a in section.articles[1:2])
    text = " · ".join(h for h in headlines if h)
    if len(text) < PREHEADER_MIN:
        text = f"{text} · Today in {lst.title}" if text else f"Today in {lst.title}"
    if len(text) < PREHEADER_MIN:
        text = f"{text}: the day's top stories, section by section"
    return ph.scrub(_shorten(text, PREHEADER_MAX))


def _edition_date(edition: Edition, lst: ListConfig) -> Date:
    """The date an edition is dated by: the day its period's edition is due."""
    try:
        return periods.due_date(lst.schedule_of(edition.key), edition.key)
    except ValueError:
        raise ComposeError(
            f"edition key {edition.key!r} is not one of a {lst.schedule} list "
            "(2026-11-26, 2026-W48 or 2026-11)"
        ) from None


def _locale(name: str) -> Locale:
    try:
        return Locale.parse(name)
    except (UnknownLocaleError, ValueError):
        raise ComposeError(
            f"locale {name!r} is unknown", "use a code such as en, fr or pt_BR"
        ) from None


def _context(
    newsletter: Newsletter,
    lst: ListConfig,
    locale: Locale,
    day: Date,
    subject: str,
    preheader: str,
    sections: tuple[Section, ...],
    summary_chars: int,
    more: int | None,
    base_url: str,
    note: dict | None = None,
) -> dict:
    clean = _cleaner()
    return {
        "newsletter": {"name": clean(newsletter.name), "website": _web_url(newsletter.website)},
        "list": {
            "name": lst.name,
            "title": clean(lst.title),
            # The header names the list once: not again when its title is the brand's.
            "title_is_name": clean(lst.title).casefold() == clean(newsletter.name).casefold(),
            "postal_address": clean(lst.postal_address),
            "privacy_url": _web_url(lst.privacy_url or ""),
        },
        "lang": str(locale).replace("_", "-"),
        "dir": "rtl" if locale.character_order == "right-to-left" else "ltr",
        "date": format_date(day, format="long", locale=locale),
        "subject": subject,
        "preheader": preheader,
        "base_url": _web_url(base_url),
        "sections": [_section(s, lst, locale, summary_chars, more) for s in sections],
        "urls": {
            "unsubscribe": ph.UNSUBSCRIBE_URL,
            "preferences": ph.PREFERENCES_URL,
            "view": ph.VIEW_URL,
        },
        "recipient": {"email": ph.RECIPIENT_EMAIL},
        "note": note,  # the editor's introduction: {"html", "text"}, or None
    }


def _section(
    section: Section, lst: ListConfig, locale: Locale, summary_chars: int, more: int | None
) -> dict:
    lead, *rest = section.articles
    return {
        "slug": section.slug,
        "title": _cleaner()(section.title),
        "lead": _article(lead, lst, locale, summary_chars, section.also_for(lead)),
        "more": [_article(a, lst, locale, 0, section.also_for(a)) for a in rest[:more]],
    }  # None: all


def _article(
    article: Article,
    lst: ListConfig,
    locale: Locale,
    summary_chars: int,
    also: tuple[Article, ...] = (),
) -> dict:
    clean = _cleaner()
    dateline = clean(article.dateline or "")
    if not dateline and article.published_at is not None and article.published_at.tzinfo:
        dateline = format_date(
            article.published_at.astimezone(lst.tz), format="medium", locale=locale
        )
    image = article.image if article.image and _is_https(article.image) else ""
    return {
        "title": clean(article.title),
        "url": _web_url(article.url),
        "summary": _shorten(clean(article.summary), summary_chars) if summary_chars else "",
        "byline": clean(article.byline or ""),
        "dateline": dateline,
        "image": _one_line(image),
        "also": _also(also),
    }


def _also(reports: tuple[Article, ...]) -> list[dict]:
    """The other reports of a story as links: the site's name and the address (a report
    without a usable http(s) link is left out)."""
    links = []
    for report in reports:
        url = _web_url(report.url)
        if url:
            links.append({"source": _cleaner()(host(url) or url), "url": url})
    return links


def _cleaner():
    return lambda value: ph.scrub(_one_line(value))


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:.-\u2013\u2014")  # hyphen, en and em dash
    return cut + "…"


def _web_url(url: str) -> str:
    """``url`` if it is an absolute http(s) link (no javascript: and the like), else ""."""
    url = ph.scrub(url.strip())
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc and not any(c.isspace() for c in url):
        return url
    return ""


def _is_https(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme == "https" and bool(parts.netloc)


_RESTORE = "restore it in DIGEST_TEMPLATES, or reinstall digest if a default template is missing"


def _source(env: jinja2.Environment, name: str) -> str:
    if env.loader is None:  # make_environment always gives one
        raise ComposeError(f"template {name} not found", _RESTORE)
    try:
        return env.loader.get_source(env, name)[0]
    except jinja2.TemplateNotFound:
        raise ComposeError(f"template {name} not found", _RESTORE) from None


def _render(env: jinja2.Environment, name: str, context: dict) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise ComposeError(f"template {exc.name} not found", _RESTORE) from None
    except jinja2.TemplateError as exc:
        where = f"{getattr(exc, 'filename', None) or name}:{getattr(exc, 'lineno', '?')}"
        raise ComposeError(f"template {where} failed: {exc.message or exc}") from None


def _normalize_text(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        # The template's blocks leave runs of blank lines; one is enough.
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n") + "\n"
