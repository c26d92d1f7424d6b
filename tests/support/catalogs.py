"""The message catalogs held against the wording the code uses, as ``make catalogs`` extracts
it (babel.cfg): what is missing, stale or untranslated, said per catalog and msgid, with the
command that updates them."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from digest import i18n

MsgId = str | tuple[str, ...]
HOW = (
    f"Run `{i18n.UPDATE_COMMAND}` to extract the wording again into digest/locales/digest.pot "
    "and update every catalog from it, then write the translations of the empty (or fuzzy) "
    "entries named above in each .po."
)
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|<[^>]+>")


def used_messages(root: Path) -> dict[MsgId, list[str]]:
    """Every msgid the templates and modules under ``root`` use, with the files using it."""
    with (root / "babel.cfg").open(encoding="utf-8") as cfg:
        methods, options = parse_mapping_cfg(cfg)
    found: dict[MsgId, list[str]] = {}
    for filename, _line, message, _comments, _context in extract_from_dir(
        str(root), methods, options
    ):
        key = message if isinstance(message, str) else tuple(message)
        found.setdefault(key, [])
        if filename not in found[key]:
            found[key].append(filename)
    return found


def read_catalog(path: Path, language: str | None = None) -> Catalog:
    with path.open("rb") as po:
        return read_po(po, locale=language)


def translated(message: Message) -> bool:
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    return not message.fuzzy and all(strings)


def drift(root: Path) -> list[str]:
    """Each way the catalogs under ``root/digest/locales`` differ from the wording used under
    ``root``, one line each; empty when they are in step."""
    locales = root / "digest" / "locales"
    used = used_messages(root)
    problems = []
    pot = {m.id for m in read_catalog(locales / "digest.pot") if m.id}
    problems += _differences("digest/locales/digest.pot", used, pot)
    for path in sorted(locales.glob("*/LC_MESSAGES/digest.po")):
        language = path.parent.parent.name
        where = f"{path.relative_to(root)} ({language})"
        catalog = read_catalog(path, language)
        messages = {m.id: m for m in catalog if m.id}
        problems += _differences(where, used, set(messages))
        lacking = [key for key in used if key in messages and not translated(messages[key])]
        if lacking:
            problems.append(f"{where} has no translation of {_names(lacking)}")
        expected = get_plural(language)
        if catalog.num_plurals != expected.num_plurals:
            problems.append(
                f"{where} says nplurals={catalog.num_plurals}; {language} has "
                f"{expected.num_plurals} ({expected.plural_forms})"
            )
        for message, errors in catalog.check():
            if message.id and translated(message):
                problems.append(f"{where}, {message.id!r}: {'; '.join(map(str, errors))}")
    return problems


def drift_report(root: Path) -> str:
    problems = drift(root)
    return "\n".join([*problems, HOW]) if problems else ""


def english_fragments(msgid: MsgId) -> list[str]:
    """The English words of a msgid between its placeholders and tags: what a rendering
    shows of it untranslated. Short function words ("of", "at") are left out, as an
    article's own text may hold them; a capitalized one ("By") is kept."""
    texts = (msgid,) if isinstance(msgid, str) else msgid
    parts = [part.strip() for text in texts for part in PLACEHOLDER.split(text)]
    return [
        part
        for part in parts
        if sum(c.isalpha() for c in part) >= 3
        or (sum(c.isalpha() for c in part) == 2 and part[0].isupper())
    ]


def _differences(where: str, used: dict[MsgId, list[str]], held: set) -> list[str]:
    problems = []
    missing = [key for key in used if key not in held]
    if missing:
        files = sorted({f for key in missing for f in used[key]})
        problems.append(f"{where} lacks {_names(missing)} (used in {', '.join(files)})")
    stale = [key for key in held if key not in used]
    if stale:
        problems.append(f"{where} holds {_names(stale)}, which nothing uses")
    return problems


def _names(keys: list) -> str:
    return ", ".join(repr(key if isinstance(key, str) else key[0]) for key in sorted(keys, key=str))
