"""The code's own shape: one exit code table, shared by the CLI and the README."""

from __future__ import annotations

import re

import pytest

from digest import errors
from digest.exits import ExitCode
from digest.send.lock import RunLocked

from conftest import ROOT

_ROW = re.compile(r"^\| (\d+) \| (.+) \|$")


def _readme_exit_codes() -> dict[int, str]:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    heading = next(i for i, line in enumerate(lines) if line.startswith("Exit codes of every"))
    header = next(i for i in range(heading, len(lines)) if lines[i] == "| code | meaning |")
    table: dict[int, str] = {}
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        match = _ROW.match(line)
        assert match, f"README exit code row does not parse: {line!r}"
        code = int(match.group(1))
        assert code not in table, f"README lists exit code {code} twice"
        table[code] = match.group(2)
    return table


def test_the_readme_exit_code_table_says_what_the_code_table_says():
    assert _readme_exit_codes() == {int(code): code.meaning for code in ExitCode}


@pytest.mark.parametrize("error", [e for e in vars(errors).values()
                                   if isinstance(e, type) and issubclass(e, Exception)]
                         + [RunLocked])
def test_every_error_exits_with_a_code_of_the_table(error):
    assert isinstance(error.exit_code, ExitCode)
