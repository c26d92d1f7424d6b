"""The code's own shape: one exit code table, shared by the CLI and the README; no import cycle."""

from __future__ import annotations

import ast
import re

import pytest

from digest import errors
from digest.exits import ExitCode
from digest.send.lock import RunLocked
from tests.support.values import ROOT

_ROW = re.compile(r"^\| (\d+) \| (.+) \|$")


def _readme_exit_codes() -> dict[int, str]:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    heading = next(i for i, line in enumerate(lines) if line.startswith("Exit codes of every"))
    header = next(i for i in range(heading, len(lines)) if lines[i] == "| code | meaning |")
    table: dict[int, str] = {}
    for line in lines[header + 2 :]:
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


@pytest.mark.parametrize(
    "error",
    [e for e in vars(errors).values() if isinstance(e, type) and issubclass(e, Exception)]
    + [RunLocked],
)
def test_every_error_exits_with_a_code_of_the_table(error):
    assert isinstance(error.exit_code, ExitCode)


def _module_name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Each module of digest -> the digest modules it imports, wherever the import statement
    sits (top level, a function, an ``if TYPE_CHECKING:`` block): a lazy import is still a
    dependency."""
    paths = {_module_name(p): p for p in (ROOT / "digest").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(
                        package.split(".")[: len(package.split(".")) - node.level + 1]
                        + ([base] if base else [])
                    )
                for alias in node.names:
                    # `from a import b` imports the module a.b when there is one, else a.
                    targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base)
        graph[name] = {t for t in targets if t in paths and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph (its modules in order, the first repeated), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_module_of_digest_imports_itself_back_through_others():
    graph = _import_graph()
    # The graph is the real one: a package's imports of its modules are in it.
    assert {"digest.pipeline.sending", "digest.pipeline.checks"} <= graph["digest.pipeline"]
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_lazy_import_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def _store_calls(path) -> list[str]:
    """Where a module calls the store itself (``<anything>.store.<method>``)."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "store"
        ):
            calls.append(f"{path.name}:{node.lineno}: .store.{node.attr}")
    return calls


def test_the_cli_and_the_web_edge_reach_the_store_through_the_pipeline_only():
    edges = sorted((ROOT / "digest" / "cli").glob("*.py"))
    edges += sorted((ROOT / "digest" / "web").glob("*.py"))
    assert [call for path in edges for call in _store_calls(path)] == []
