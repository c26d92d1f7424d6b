"""Previewing and checking: a sample message, `digest check`, preview files."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path

from jinja2 import TemplateSyntaxError

from digest import i18n
from digest.compose import brand
from digest.compose import check as lint
from digest.compose import note as editor_note
from digest.compose.mime import body_text
from digest.compose.render import make_environment
from digest.config import ListConfig
from digest.errors import ComposeError, SelectionError, SubscriberError
from digest.exits import ExitCode
from digest.files import private_dir, write_private
from digest.models import Edition, OutgoingMessage, Subscriber
from digest.pipeline.context import Context, preview_settings
from digest.pipeline.editions import SAMPLE_RECIPIENT, Composer
from digest.pipeline.editorial import preview_edition
from digest.pipeline.sections import stale_section_warning


@dataclass(frozen=True)
class Sample:
    """One recipient's message of today's edition, composed exactly as ``send`` would."""

    edition: Edition
    list: ListConfig
    message: OutgoingMessage
    sections: tuple[str, ...]  # the slugs it holds
    notes: tuple[str, ...] = ()  # what trimming left out to fit the size budget


def sample(
    ctx: Context,
    list_name: str | None,
    *,
    now: datetime,
    subscriber_email: str | None = None,
    sections: frozenset[str] | None = None,
    next_edition: bool = False,
    on: str | None = None,
    frequency: str | None = None,
) -> Sample:
    """Compose one message of today's edition (or the next one to go out, or the one of the
    date ``on``), of the series of ``frequency`` (None: the list's own); changes nothing in
    the store.

    The recipient is ``subscriber_email`` with their own section choice, else a sample reader
    with ``sections`` (None: every section)."""
    lst = ctx.newsletter.get_list(list_name)
    edition = preview_edition(ctx, lst, now, next_edition=next_edition, on=on, frequency=frequency)
    if edition is None:
        raise SelectionError(
            f"list {lst.name}: no articles for an edition",
            "run `digest fetch` first, or widen window_hours",
        )
    if subscriber_email:
        subscriber = ctx.store.subscriber(subscriber_email)
        if subscriber is None:
            raise SubscriberError(f"no subscriber {subscriber_email}")
        subscriber = Subscriber(
            id=subscriber.id,
            email=subscriber.email,
            name=subscriber.name,
            sections=ctx.store.subscriptions(subscriber.email).get(lst.name),
        )
    else:
        subscriber = Subscriber(
            id=SAMPLE_RECIPIENT.subscriber_id,
            email=SAMPLE_RECIPIENT.email,
            name=SAMPLE_RECIPIENT.name,
            sections=sections,
        )
    composer = Composer(ctx, edition, lst, now)
    message = composer.message(subscriber)
    if message is None:
        raise SelectionError(
            f"{subscriber.email} gets none of the sections in edition {edition.key}",
            "nothing would be sent to them",
        )
    slugs = tuple(s.slug for s in edition.for_sections(subscriber.sections))
    return Sample(edition, lst, message, slugs, composer.notes.get(slugs, ()))


@dataclass(frozen=True)
class CheckReport:
    edition: str
    recipient: str
    findings: tuple[lint.Finding, ...]
    notes: tuple[str, ...] = ()
    # About the list's readers rather than the message (sections they chose that are gone).
    advice: tuple[str, ...] = ()

    @property
    def errors(self) -> list[lint.Finding]:
        return lint.errors(list(self.findings))

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.CHECK if self.errors else ExitCode.OK

    def as_dict(self) -> dict:
        return {
            "edition": self.edition,
            "recipient": self.recipient,
            "errors": len(self.errors),
            "warnings": len(self.findings) - len(self.errors),
            "notes": list(self.notes),
            "advice": list(self.advice),
            "findings": [f.as_dict() for f in self.findings],
        }


def check(
    ctx: Context, list_name: str | None, *, now: datetime, subscriber_email: str | None = None
) -> CheckReport:
    """Lint today's message (a sample reader's with every section, or one subscriber's),
    with the list's brand colours and its own template folder."""
    lst = ctx.newsletter.get_list(list_name)
    own = list_findings(lst)
    try:
        composed = sample(ctx, lst.name, now=now, subscriber_email=subscriber_email)
    except ComposeError as exc:
        if lst.templates is None or not exc.message.startswith("template "):
            raise
        # A template of the list's folder that fails: said as a finding, with its file.
        failed = lint.Finding(lint.ERROR, "templates", exc.message, f"lists.{lst.name}.templates")
        return CheckReport(lst.key_at(now), SAMPLE_RECIPIENT.email, (*own, failed))
    report = _report(composed.edition, composed.message, composed.notes, lst)
    language = locale_finding(composed.list)
    if language is not None:
        report = dataclasses.replace(report, findings=(*report.findings, language))
    stale = stale_section_warning(ctx, composed.list.name)
    return dataclasses.replace(report, advice=(stale,)) if stale else report


def locale_finding(lst: ListConfig) -> lint.Finding | None:
    """A warning when no shipped catalog fits the list's locale: its readers get the
    templates' English wording around dates in their language."""
    if i18n.catalog_for(lst.locale) is not None:
        return None
    return lint.Finding(
        lint.WARNING,
        "locale",
        f"no catalog for locale {lst.locale}: the wording stays English (shipped: "
        f"{', '.join(i18n.shipped())}; README, Languages, says how to add one)",
        f"lists.{lst.name}.locale",
    )


def list_findings(lst: ListConfig) -> list[lint.Finding]:
    """What is wrong with a list's look before any message: brand colours under 4.5:1
    contrast (light and dark), and a template folder that is missing or holds a template
    that does not parse."""
    found = [
        lint.Finding(
            lint.ERROR, "brand-contrast", str(problem), f"lists.{lst.name}.{problem.setting}"
        )
        for problem in brand.contrast_problems(brand.brand_of(lst))
    ]
    folder = lst.templates
    where = f"lists.{lst.name}.templates"
    if folder is None:
        return found
    if not folder.is_dir():
        what = f"templates folder {folder} does not exist (the bundled templates are used)"
        return [*found, lint.Finding(lint.ERROR, "templates", what, where)]
    env = make_environment(None, folder)
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        name = path.relative_to(folder).as_posix()
        try:
            env.parse(path.read_text(encoding="utf-8"), name, str(path))
        except UnicodeDecodeError:
            found.append(lint.Finding(lint.ERROR, "templates", f"{name} is not UTF-8 text", where))
        except TemplateSyntaxError as exc:
            what = f"{name}:{exc.lineno} does not parse: {exc.message}"
            found.append(lint.Finding(lint.ERROR, "templates", what, where))
    return found


def _report(
    edition: Edition,
    message: OutgoingMessage,
    notes: tuple[str, ...],
    lst: ListConfig | None = None,
) -> CheckReport:
    """The message's findings, the list's own (``list_findings``), and the editor's note's
    (its markup is checked as written: a link the composer had to leave out is an error)."""
    findings = lint.check(message.raw)
    findings += list_findings(lst) if lst is not None else []
    findings += [
        lint.Finding(severity, "note", what, "the editor's note")
        for severity, what in editor_note.findings(edition.curation.note)
    ]
    findings.sort(key=lambda f: f.severity != lint.ERROR)
    return CheckReport(edition.key, message.recipient, tuple(findings), notes)


def check_edition(composer: Composer) -> CheckReport:
    """Lint the edition's fullest message (a sample reader's, every section): what `digest
    send` checks before anything is sent."""
    full = Subscriber(
        id=SAMPLE_RECIPIENT.subscriber_id, email=SAMPLE_RECIPIENT.email, name=SAMPLE_RECIPIENT.name
    )
    message = composer.message(full)
    if message is None:  # an edition has sections, and this reader takes every one
        raise ComposeError(f"edition {composer.edition.key} has no section to check")
    return _report(
        composer.edition,
        message,
        composer.notes.get(tuple(s.slug for s in composer.edition.sections), ()),
        composer.lst,
    )


@dataclass(frozen=True)
class Preview:
    edition: str
    recipient: str
    html: Path
    text: Path
    eml: Path
    notes: tuple[str, ...] = ()


def preview(
    ctx: Context,
    list_name: str | None,
    out_dir: Path,
    *,
    now: datetime,
    subscriber_email: str | None = None,
    next_edition: bool = False,
    on: str | None = None,
    frequency: str | None = None,
) -> Preview:
    """Write one recipient's message as .html, .txt and .eml; changes nothing in the store.
    Its links are signed with the preview key: a preview file that travels acts on nothing.
    ``next_edition`` and ``on`` pick the edition as ``sample`` does."""
    ctx = dataclasses.replace(ctx, settings=preview_settings(ctx.settings))
    composed = sample(
        ctx,
        list_name,
        now=now,
        subscriber_email=subscriber_email,
        next_edition=next_edition,
        on=on,
        frequency=frequency,
    )
    written = write_preview(composed.message, out_dir, composed.edition.key)
    return Preview(
        written.edition, written.recipient, written.html, written.text, written.eml, composed.notes
    )


def write_preview(message: OutgoingMessage, out_dir: Path, edition_key_: str) -> Preview:
    private_dir(out_dir)  # a real reader's message carries their address and live tokens
    parsed = message_from_bytes(message.raw, policy=policy.default)
    paths = Preview(
        edition=edition_key_,
        recipient=message.recipient,
        html=out_dir / "digest.html",
        text=out_dir / "digest.txt",
        eml=out_dir / "digest.eml",
    )
    write_private(paths.eml, message.raw)
    write_private(paths.html, body_text(parsed, "html"))
    write_private(paths.text, body_text(parsed, "plain"))
    return paths
