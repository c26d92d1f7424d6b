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


def loaded_packages(tmp_path, *args: str) -> set[str]:
    """The top-level packages `digest ARGS` imports, in a new interpreter."""
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
    return {name.partition(".")[0] for name in modules}


def test_help_loads_neither_the_store_nor_the_settings_nor_any_stage(tmp_path):
    loaded = loaded_packages(tmp_path, "--help")
    assert "typer" in loaded  # the probe did run the command line
    for package in ("sqlalchemy", "pydantic", "pydantic_settings", *STAGES):
        assert package not in loaded, f"digest --help imports {package}"


@pytest.mark.parametrize(
    "args", [("subscribers", "list"), ("subscribers", "add", "new@example.org")]
)
def test_subscriber_commands_load_the_store_but_no_stage(sample_env, args):
    run("init")
    loaded = loaded_packages(sample_env, *args)
    assert "sqlalchemy" in loaded  # the command did reach the store
    for package in STAGES:
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
