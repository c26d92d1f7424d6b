"""The test suite's own rules: a helper, constant or fixture is defined once, in
``tests/conftest.py`` or ``tests/support/``, or in the one test module that uses it, so that
a change to how tests set up a store, a server or the CLI is made in one place; and the
suite's connections stay on loopback."""

from __future__ import annotations

import ast
import socket
from collections import defaultdict
from pathlib import Path

import pytest

from tests.support.network import loopback_only

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


def test_tests_connect_to_loopback_only():
    class Sock:
        family = socket.AF_INET

    connect = loopback_only(lambda sock, address: "connected")
    assert connect(Sock(), ("127.0.0.1", 25)) == "connected"
    assert connect(Sock(), ("localhost", 25)) == "connected"  # resolved further down
    for address in ("10.0.0.5", "169.254.169.254", "93.184.215.14"):
        with pytest.raises(OSError, match="loopback only"):
            connect(Sock(), (address, 80))
    Sock.family = socket.AF_INET6
    assert connect(Sock(), ("::1", 25, 0, 0)) == "connected"
    with pytest.raises(OSError, match="loopback only"):
        connect(Sock(), ("fe80::1%eth0", 80, 0, 0))
