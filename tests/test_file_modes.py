"""Files holding personal data or tokens are owner-only on disk (0600, their folders 0700):
the SQLite database with its WAL and shared-memory files, the outbox, preview output,
exports written with --out, and .env. Each test runs under the common umask 022, so a
restrictive umask cannot make it pass."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.support.cli import run, sample_settings, set_settings
from tests.support.values import EXAMPLE_CSV


@pytest.fixture(autouse=True)
def common_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def data_env(monkeypatch, tmp_path) -> Path:
    """The sample newsletter fetched and its example subscribers imported, into a SQLite
    database in a data/ folder the store creates, with the outbox in the test's folder."""
    database_url = f"sqlite:///{tmp_path / 'data' / 'digest.db'}"
    set_settings(monkeypatch, sample_settings(database_url, DIGEST_OUTBOX=str(tmp_path / "outbox")))
    run("fetch")
    run("subscribers", "import", str(EXAMPLE_CSV))
    return tmp_path


def test_the_sqlite_database_its_wal_and_shm_files_and_folder_are_owner_only(tmp_path):
    from digest.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'data' / 'digest.db'}")
    try:
        store.ensure_lists([("daily", "Daily")])  # a write: the WAL and SHM files exist now
        with store.engine.connect():
            files = {p.name: mode(p) for p in (tmp_path / "data").iterdir()}
    finally:
        store.close()
    assert set(files) >= {"digest.db", "digest.db-wal", "digest.db-shm"}
    assert all(m == 0o600 for m in files.values()), {n: oct(m) for n, m in files.items()}
    assert mode(tmp_path / "data") == 0o700


def test_an_existing_database_folder_keeps_its_mode(tmp_path):
    from digest.store import open_store

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    open_store(f"sqlite:///{shared / 'digest.db'}").close()
    assert mode(shared) == 0o755 and mode(shared / "digest.db") == 0o600


def test_the_outbox_and_its_messages_are_owner_only(data_env):
    run("send")
    outbox = data_env / "outbox"
    messages = list((outbox / "new").iterdir())
    assert messages
    assert {mode(p) for p in messages} == {0o600}
    assert {mode(outbox / sub) for sub in ("tmp", "new", "cur")} | {mode(outbox)} == {0o700}


def test_preview_output_is_owner_only(data_env):
    run(
        "preview", "--subscriber", "ada.lovelace@example.com", "--out", str(data_env / "pv" / "ada")
    )
    written = list((data_env / "pv" / "ada").iterdir())
    assert {p.suffix for p in written} == {".html", ".txt", ".eml"}
    assert {mode(p) for p in written} == {0o600}
    assert mode(data_env / "pv") == 0o700 and mode(data_env / "pv" / "ada") == 0o700


def test_an_export_written_with_out_is_owner_only(data_env):
    run("subscribers", "export", "--out", str(data_env / "subscribers.csv"))
    assert "ada.lovelace@example.com" in (data_env / "subscribers.csv").read_text()
    assert mode(data_env / "subscribers.csv") == 0o600


def test_init_writes_env_owner_only_and_tightens_an_older_one(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGEST_DATABASE_URL", f"sqlite:///{tmp_path / 'digest.db'}")
    run("init")
    assert mode(tmp_path / ".env") == 0o600
    assert mode(tmp_path / "digest.db") == 0o600
    (tmp_path / ".env").unlink()
    (tmp_path / ".env").write_text("DIGEST_BASE_URL=https://news.example.com\n")
    assert mode(tmp_path / ".env") == 0o644
    run("init")
    assert "DIGEST_SECRET_KEY=" in (tmp_path / ".env").read_text()
    assert mode(tmp_path / ".env") == 0o600
