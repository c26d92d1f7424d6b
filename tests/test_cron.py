"""The README's cron lines, run as written by a shell in a fresh folder after `digest init`:
the folders they write to exist, and a successful day leaves nothing for cron to mail."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.values import ROOT

INSTALL = "/srv/digest"  # the install folder the README's lines name


def readme_cron_lines() -> list[str]:
    """The README's crontab lines (five time fields, then the command) in any of its code
    blocks (prose that starts with numbers is not one)."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S)
    cron = re.compile(r"^[\d*/,-]+(?: +[\d*/,-]+){4} +\S.*$", re.M)
    return [line for block in blocks for line in cron.findall(block)]


def fresh_install(folder: Path) -> dict[str, str]:
    """``folder`` set up as the README says: a .venv/bin/digest (this one's), `digest init`,
    the starter's example feed fetched and one reader; returns the environment cron gives a
    job (no DIGEST_* settings)."""
    (folder / ".venv" / "bin").mkdir(parents=True)
    digest = folder / ".venv" / "bin" / "digest"
    digest.symlink_to(Path(sys.executable).parent / "digest")
    (folder / "readers.csv").write_text("email,name,lists\nreader@example.org,Reader,daily\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("DIGEST_")}
    for args in (["init"], ["fetch"], ["subscribers", "import", "readers.csv"]):
        subprocess.run([str(digest), *args], cwd=folder, env=env, check=True, capture_output=True)
    return env


def test_the_readme_has_the_daily_the_hourly_and_the_postgresql_cron_lines():
    lines = readme_cron_lines()
    assert len(lines) == 3 and all(f"cd {INSTALL} && " in line for line in lines)
    assert all("2>> log/digest.log" in line for line in lines)


def test_digest_init_creates_the_log_folder_private(tmp_path):
    fresh_install(tmp_path)
    assert (tmp_path / "log").is_dir()
    assert (tmp_path / "log").stat().st_mode & 0o777 == 0o700


def test_every_readme_cron_line_runs_as_written_after_digest_init(tmp_path):
    for number, line in enumerate(readme_cron_lines()):
        folder = tmp_path / f"install{number}"
        folder.mkdir()
        env = fresh_install(folder)
        # The five time fields go; the command runs as cron runs it: by sh, without a terminal.
        command = line.split(None, 5)[5].replace(INSTALL, str(folder))
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), line
        log = folder / "log"
        assert (log / "digest.log").read_text() == "", line  # nothing for cron to mail
        records = (log / "send.jsonl").read_text().splitlines()
        assert [(json.loads(r)["status"], json.loads(r)["sent"]) for r in records] == [
            ("complete", 1)
        ], line
