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

import re
import string
import textwrap
from datetime import date as Date
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import jinja2
from babel import Locale, UnknownLocaleError
from babel.dates import format_date

from digest import i18n, periods
from digest.compose import note as editor_note
from digest.compose import placeholders as ph
from digest.compose.brand import brand_of
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
BLURB_CHARS = 140  # a further headline's blurb in the rich layout: one sentence, at most this
THUMB_WIDTH, THUMB_MIN = 96, 48  # a headline's thumbnail: displayed pixels, widest and least
THUMB_TALLEST = 128  # and its height at most (a portrait picture is shown narrower)
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


def make_environment(
    user_templates: Path | None = None,
    list_templates: Path | None = None,
    *,
    locale: str | None = None,
) -> jinja2.Environment:
    """Templates from a list's own folder (``templates`` in its definition) first, then
    ``user_templates`` (DIGEST_TEMPLATES), then the defaults shipped with the package: each
    file is taken from the first folder that has it; their wording in ``locale``'s catalog
    (None: as the templates write it)."""
    loaders: list[jinja2.BaseLoader] = []
    for folder in (list_templates, user_templates):
        if folder is not None:
            loaders.append(jinja2.FileSystemLoader(str(folder)))
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
    # Template wording goes through gettext (``{{ _("Read more") }}``, digest.i18n).
    i18n.install(
        env, locale, lambda other: make_environment(user_templates, list_templates, locale=other)
    )
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
    env = i18n.localized(env, lst.locale)
    subject = make_subject(lst, day, sections[0].articles[0].title)
    preheader = make_preheader(sections, lst)
    brand = brand_of(lst)
    # base.css is a template too: the list's colours go into the rules it inlines.
    css = _render(env, "base.css", {"brand": brand.as_dict()})
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
    _ = i18n.gettext_of(lst.locale)
    headlines = [_one_line(s.articles[0].title) for s in sections]
    for section in sections:
        headlines.extend(_one_line(a.title) for a in section.articles[1:2])
    text = " · ".join(h for h in headlines if h)
    if len(text) < PREHEADER_MIN:
        today = _("Today in %(list)s") % {"list": lst.title}
        text = f"{text} · {today}" if text else today
    if len(text) < PREHEADER_MIN:
        text = _("%(start)s: the day's top stories, section by section") % {"start": text}
    return ph.scrub(_shorten(text, PREHEADER_MAX))


# Words that end in a full stop without ending a sentence ("Dr. Ruiz", "Gen. Ames", "Jan. 3").
_ABBREVIATIONS = frozenset(
    re.findall(
        r"\w+",
        "mr mrs ms dr prof st sr jr sen rep gov gen col lt maj capt sgt adm cmdr cdr pres rev "
        "hon mt ft no nos vol vs etc inc ltd co corp dept est approx fig al jan feb mar apr aug "
        "sept sep oct nov dec",
    )
)
_COMMON_WORDS = frozenset({"no", "nos", "co", "mar", "fig", "vol", "est"})
# A sentence ends at ., ! or ? (with any closing quotes or brackets) before a space.
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?=\s)")


def first_sentence(text: str, limit: int = BLURB_CHARS) -> str:
    """The first sentence of ``text``, if it is ``limit`` characters or fewer; else ``text``
    cut at the last word boundary that fits, with an ellipsis. A full stop after an
    abbreviation ("Dr.", "Gen."), an initial ("J.") or an initialism ("U.S.") ends no
    sentence; nor does one inside a number or a URL (no space after it)."""
    text = _one_line(text)
    for match in _SENTENCE_END.finditer(text):
        if text[match.start()] == "." and _abbreviation(text[: match.start()]):
            continue
        text = text[: match.end()]
        break
    return _shorten(text, limit)


def _abbreviation(before: str) -> bool:
    """Whether the word ending ``before`` (its full stop cut off) is an abbreviation."""
    word = before.rsplit(None, 1)[-1] if before.strip() else ""
    word = word.lstrip("\"'(\u201c\u2018[")
    if not word:
        return False
    # An initial (J.), an initialism (U.S, e.g, a.m) or a known short word (Dr, Gen, Jan).
    if word.lower() in _COMMON_WORDS and not word[0].isupper():
        return False  # "the answer was no." ends its sentence; "No. 5" does not
    return (
        (len(word) == 1 and word.isalpha() and word.isupper())
        or bool(re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", word))
        or word.lower() in _ABBREVIATIONS
    )


def thumbnail(src: str, width: int | None, height: int | None) -> dict | None:
    """A headline's picture at its displayed size: ``THUMB_WIDTH`` pixels wide, or less so
    that the file is at least twice the size it is shown at (sharp on high-density
    screens), and at most ``THUMB_TALLEST`` high; the height keeps the file's ratio. A
    picture of unknown size is shown ``THUMB_WIDTH`` wide with no height (its own ratio,
    through ``height: auto``); one too small to show sharp at ``THUMB_MIN`` pixels, or no
    https picture, gives None."""
    if not src or not _is_https(src):
        return None
    if not width or not height or width <= 0 or height <= 0:
        return {"src": _one_line(src), "width": THUMB_WIDTH, "height": None}
    shown = min(THUMB_WIDTH, width // 2)
    if shown * height > THUMB_TALLEST * width:  # a tall picture: narrower, not taller
        shown = THUMB_TALLEST * width // height
    if shown < THUMB_MIN:
        return None
    return {"src": _one_line(src), "width": shown, "height": max(1, round(shown * height / width))}


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
        "layout": lst.layout,
        "brand": brand_of(lst).as_dict(),
        "logo": _logo(newsletter, lst),
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
        "more": [
            _article(
                a, lst, locale, 0, section.also_for(a), blurb_chars=min(summary_chars, BLURB_CHARS)
            )
            for a in rest[:more]
        ],
    }  # None: all


def _article(
    article: Article,
    lst: ListConfig,
    locale: Locale,
    summary_chars: int,
    also: tuple[Article, ...] = (),
    blurb_chars: int = 0,
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
        # The rich layout's further headlines: one sentence and a small picture.
        # (Trimming for size shortens them with the lead summaries, then leaves them out.)
        "blurb": _blurb(article, blurb_chars) if lst.layout == "rich" and blurb_chars else "",
        "thumb": thumbnail(image, article.image_width, article.image_height),
    }


def _blurb(article: Article, limit: int) -> str:
    """The summary's first sentence, unless it only says the headline again (feeds that
    repeat the title as the summary)."""
    blurb = ph.scrub(first_sentence(article.summary, limit))
    same = blurb.rstrip(".!?… ").casefold() == _one_line(article.title).rstrip(".!?… ").casefold()
    return "" if same else blurb


def _logo(newsletter: Newsletter, lst: ListConfig) -> dict | None:
    """The header's logo (an https picture, checked by the config), or None: the name."""
    if not lst.logo_url:
        return None
    return {
        "src": _one_line(ph.scrub(lst.logo_url)),
        "alt": _cleaner()(lst.logo_alt or newsletter.name),
        "width": lst.logo_width,
        "height": lst.logo_height,
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


_RESTORE = (
    "restore it in DIGEST_TEMPLATES or the list's templates folder, "
    "or reinstall digest if a default template is missing"
)


def _render(env: jinja2.Environment, name: str, context: dict) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise ComposeError(f"template {exc.name} not found", _RESTORE) from None
    except jinja2.TemplateError as exc:
        filename, line = _failing_template(exc)
        where = f"{getattr(exc, 'filename', None) or filename or name}:"
        where += str(getattr(exc, "lineno", None) or line or "?")
        raise ComposeError(f"template {where} failed: {exc.message or exc}") from None


def _failing_template(exc: Exception) -> tuple[str | None, int | None]:
    """The template file and line an error was raised in (Jinja puts template frames in
    the traceback): an error while rendering carries neither itself, and the file at fault
    may be a partial or a list's own template rather than the one rendered."""
    found: tuple[str | None, int | None] = (None, None)
    frame = exc.__traceback__
    while frame is not None:
        filename = frame.tb_frame.f_code.co_filename
        if filename.endswith((".j2", ".css", ".html")):
            found = (filename, frame.tb_lineno)
        frame = frame.tb_next
    return found


def _normalize_text(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        # The template's blocks leave runs of blank lines; one is enough.
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n") + "\n"
