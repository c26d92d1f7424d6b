"""What a command loads: each imports only the stages it runs, so the CLI answers at once.
Checked in a fresh process, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.cli import run
from tests.support.values import ROOT

# Runs `digest ARGS` in this process, then writes the names of the modules it loaded.
PROBE = """
import os, sys
from digest.cli import main
sys.argv = ["digest", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as exit:
    code = exit.code or 0
with open(os.environ["MODULES_OUT"], "w") as out:
    out.write("\\n".join([str(code), *sorted(sys.modules)]))
"""
# The composer, the feed fetcher and parser, the SMTP client.
STAGES = ("premailer", "cssutils", "jinja2", "httpx", "feedparser", "aiosmtplib")


def loaded_modules(tmp_path, *args: str) -> set[str]:
    """The modules `digest ARGS` imports, in a new interpreter."""
    listing = tmp_path / "modules.txt"
    subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=tmp_path,
        env={**os.environ, "MODULES_OUT": str(listing), "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
        timeout=60,
    )
    code, *modules = listing.read_text().split("\n")
    assert code == "0", f"digest {' '.join(args)} exited with {code}"
    return set(modules)


def loaded_packages(tmp_path, *args: str) -> set[str]:
    """The top-level packages `digest ARGS` imports, in a new interpreter."""
    return {name.partition(".")[0] for name in loaded_modules(tmp_path, *args)}


def test_help_loads_neither_the_store_nor_the_settings_nor_any_stage(tmp_path):
    modules = loaded_modules(tmp_path, "--help")
    loaded = {name.partition(".")[0] for name in modules}
    assert "typer" in loaded  # the probe did run the command line
    for package in ("sqlalchemy", "pydantic", "pydantic_settings", "rich", *STAGES):
        assert package not in loaded, f"digest --help imports {package}"
    # Nor the stages' values, nor what only a command's output needs.
    for module in ("digest.models", "json", "csv"):
        assert module not in modules, f"digest --help imports {module}"


def test_a_command_loads_its_own_module_of_the_command_line_and_no_other(tmp_path):
    from digest.cli import COMMANDS

    loaded = loaded_modules(tmp_path, "lists", "--help")
    assert "digest.cli.lists" in loaded
    others = {f"digest.cli.{module}" for module in COMMANDS.values()} - {"digest.cli.lists"}
    assert not others & loaded, f"digest lists --help imports {sorted(others & loaded)}"


def test_every_command_of_the_app_is_found_in_the_module_the_command_line_names():
    from typer.main import get_command

    from digest.cli import COMMANDS, app

    assert sorted(get_command(app).commands) == sorted(COMMANDS)
    for name, module in COMMANDS.items():
        assert f"digest.cli.{module}" in _modules_defining(app, name)


def _modules_defining(app, name: str) -> set[str]:
    """The modules of the callbacks of the command or group ``name`` of the app."""
    for info in app.registered_commands:
        if (info.name or info.callback.__name__) == name:
            return {info.callback.__module__}
    for group in app.registered_groups:
        if group.name == name:
            return {c.callback.__module__ for c in group.typer_instance.registered_commands}
    return set()


@pytest.mark.parametrize(
    "args",
    [("subscribers", "list", "--format", "csv"), ("subscribers", "add", "new@example.org")],
)
def test_subscriber_commands_load_the_store_but_no_stage(sample_env, db_url, args):
    run("init")
    modules = loaded_modules(sample_env, *args)
    loaded = modules | {name.partition(".")[0] for name in modules}
    assert "sqlalchemy" in loaded  # the command did reach the store
    # rich: these print CSV or a plain line. Another engine's dialect: never.
    other = "postgresql" if db_url.startswith("sqlite") else "sqlite"
    for package in ("rich", f"sqlalchemy.dialects.{other}", *STAGES):
        assert package not in loaded, f"digest {' '.join(args)} imports {package}"


def test_every_name_of_the_pipeline_is_the_object_its_module_defines():
    import importlib

    from digest import pipeline

    where = vars(pipeline)["_WHERE"]
    assert sorted(where) == sorted(pipeline.__all__)
    for name, (module, attr) in where.items():
        assert getattr(pipeline, name) is getattr(importlib.import_module(module), attr)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = pipeline.nothing_here


def test_a_plain_line_is_printed_as_rich_prints_it_without_loading_rich(capsys):
    import io

    from rich.console import Console

    from digest.cli._app import _LazyConsole

    line = "added [b]ann@example.org[/b] on daily\r\x07\x08 \u00e9t\u00e9 \x1b[31m \u2028"
    shown = io.StringIO()
    Console(file=shown, highlight=False, soft_wrap=True).print(line, markup=False)
    printer = _LazyConsole(highlight=False, soft_wrap=True)
    printer.print(line, markup=False)
    assert capsys.readouterr().out == shown.getvalue()
    assert printer._console is None  # rich was not needed


def test_opening_a_store_whose_schema_is_current_costs_one_query(db_url):
    from sqlalchemy import Engine, event

    from digest.store import open_store

    open_store(db_url).close()  # created and migrated
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        store = open_store(db_url)
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    store.close()
    assert len(statements) == 1, statements
    assert "schema_migrations" in statements[0]


def test_a_closed_pipe_ends_a_command_quietly_as_rich_does(sample_env):
    run("init")
    child = subprocess.Popen(
        [sys.executable, "-m", "digest", "fetch"],
        cwd=sample_env,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    child.stdout.close()  # `digest fetch | head -0`: nobody reads its lines
    _, errors = child.communicate(timeout=60)
    assert errors.decode() == ""
    assert child.returncode == 1
