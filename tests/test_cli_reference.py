"""The README's CLI reference against the app itself: every command is in the table, every
option the table shows exists on its command, and every option of a command is shown."""

from __future__ import annotations

import re

import pytest
from typer.main import get_command

from digest.cli import app
from tests.support.values import ROOT


def _commands() -> dict[str, object]:
    """Every command of the app by its path ("subscribers add"), groups left out."""
    found: dict[str, object] = {}

    def walk(command, path: tuple[str, ...]) -> None:
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, (*path, name))
        else:
            found[" ".join(path)] = command

    walk(get_command(app), ())
    return found


def _options(command) -> set[str]:
    """The command's long options (``--pause/--resume`` gives both; the ``--no-x`` twin that
    typer adds to a flag ``--x`` is left out, and so is an option hidden from ``--help``, kept
    for old scripts only)."""
    found = set()
    for param in command.params:
        if getattr(param, "param_type_name", "") != "option" or getattr(param, "hidden", False):
            continue
        found.update(o for o in param.opts if o.startswith("--") and o != "--help")
        found.update(
            o
            for o in param.secondary_opts
            if o.startswith("--")
            and o.removeprefix("--no-") not in {p.lstrip("-") for p in param.opts}
        )
    return found


def _reference() -> list[tuple[str, str]]:
    """Each ``digest ...`` command line of the README's CLI reference table with the text of
    its row."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## CLI reference\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `digest")]
    return [(span, row) for row in rows for span in re.findall(r"`(digest [^`]*)`", row)]


def _path_of(line: str, commands: dict[str, object]) -> str:
    """The command a README line names: the longest run of its words that is a command."""
    words = line.split()[1:]
    for end in range(len(words), 0, -1):
        if " ".join(words[:end]) in commands:
            return " ".join(words[:end])
    raise AssertionError(f"README names a command the app does not have: {line}")


def _shown() -> dict[str, set[str]]:
    commands = _commands()
    shown: dict[str, set[str]] = {}
    for line, _row in _reference():
        path = _path_of(line, commands)
        shown.setdefault(path, set()).update(re.findall(r"--[a-z][a-z0-9-]*", line))
    return shown


def test_the_readme_reference_has_a_table_to_check():
    assert len(_reference()) >= 20


def test_every_command_of_the_app_is_in_the_readme_reference():
    missing = sorted(set(_commands()) - set(_shown()))
    assert not missing, f"commands missing from the README's CLI reference: {missing}"


@pytest.mark.parametrize("path", sorted(_commands()))
def test_every_option_the_readme_shows_exists_and_every_option_is_shown(path):
    command = _commands()[path]
    shown = _shown().get(path, set())
    assert not shown - _options(command), (
        f"README shows options `digest {path}` does not have: {sorted(shown - _options(command))}"
    )
    assert not _options(command) - shown, (
        f"options of `digest {path}` missing from the README: {sorted(_options(command) - shown)}"
    )
