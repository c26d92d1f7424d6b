"""The test suite's own rule: a helper, constant or fixture is defined once, in
``tests/conftest.py`` or ``tests/support/``, or in the one test module that uses it, so that
a change to how tests set up a store, a server or the CLI is made in one place."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def top_level_names(path: Path) -> list[str]:
    """The names a module defines at its top level: functions (fixtures among them), classes
    and assigned constants; not the tests themselves, nor pytest's hooks."""
    names = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [
        n for n in names if not n.startswith(("test_", "Test", "pytest_")) and n != "pytestmark"
    ]


def test_no_helper_constant_or_fixture_is_defined_twice_in_tests():
    places = defaultdict(list)
    for path in sorted(TESTS.rglob("*.py")):
        for name in top_level_names(path):
            places[name].append(str(path.relative_to(TESTS)))
    twice = {name: where for name, where in places.items() if len(where) > 1}
    assert not twice, f"defined more than once (share it through tests/support): {twice}"
