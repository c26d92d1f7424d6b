"""Shared fixtures. A developer's own DIGEST_* settings never leak into a test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("DIGEST_"):
            monkeypatch.delenv(name)
    # Settings read .env from the working directory: run every test from its own folder.
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'digest.db'}"


@pytest.fixture
def store(db_url):
    from digest.store import open_store

    st = open_store(db_url)
    yield st
    st.close()


@pytest.fixture
def newsletter():
    from digest.config import load_newsletter

    return load_newsletter(ROOT / "digest.toml")
