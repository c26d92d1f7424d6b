"""The CLI as its users run it, through typer's CliRunner, and the settings it reads from the
environment."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import typer.main
import typer.testing
from click.testing import Result
from typer.testing import CliRunner

from digest.cli import app
from tests.support.smtpd import RecordingServer
from tests.support.values import BASE_URL, EXAMPLE_CSV, ROOT, SECRET

runner = CliRunner()


def run(*args: str, code: int = 0) -> Result:
    """``digest ARGS``: asserts the exit code, and that no traceback reached the user."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.exit_code, result.output, result.stderr)
    assert "Traceback" not in result.output + result.stderr
    return result


@functools.cache
def _command() -> Any:
    return typer.main.get_command(app)


def run_many(*args: str, code: int = 0) -> Result:
    """``run`` for a test that runs the CLI a thousand times: the click command is built
    from the app once (building it takes longer than most runs of a command)."""
    with mock.patch.object(typer.testing, "_get_command", lambda _app: _command()):
        return run(*args, code=code)


def shown(email: str) -> dict:
    """`digest subscribers show EMAIL --json`."""
    return json.loads(run("subscribers", "show", "--json", "--", email).stdout)


def sample_settings(db_url: str, **more: str) -> dict[str, str]:
    """DIGEST_* settings for the sample newsletter (the repository's digest.toml) on
    ``db_url``, with the tests' secret; ``more`` adds or replaces settings by full name."""
    return {
        "DIGEST_CONFIG": str(ROOT / "digest.toml"),
        "DIGEST_DATABASE_URL": db_url,
        "DIGEST_SECRET_KEY": SECRET,
        "DIGEST_BASE_URL": BASE_URL,
        **more,
    }


def set_settings(monkeypatch: pytest.MonkeyPatch, settings: dict[str, str]) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


def readers_csv(folder: Path, count: int, lists: Callable[[int], str] = lambda i: "daily") -> Path:
    """An import file of ``count`` readers, reader000@example.org on, each on ``lists(i)``."""
    path = folder / "readers.csv"
    path.write_text(
        "email,name,lists\n"
        + "".join(f"reader{i:03d}@example.org,Reader {i},{lists(i)}\n" for i in range(count))
    )
    return path


def load_sample(subscribers: Path = EXAMPLE_CSV) -> None:
    """`digest init`, `digest fetch` (the sample feeds) and an import of ``subscribers``."""
    run("init")
    run("fetch")
    run("subscribers", "import", str(subscribers))


def child_env(server: RecordingServer) -> dict[str, str]:
    """The environment of a `digest` child process: this one's, sending to ``server``."""
    return {
        **os.environ,
        "DIGEST_SMTP_URL": f"smtp://{server.host}:{server.port}",
        "PYTHONPATH": str(ROOT),
    }
