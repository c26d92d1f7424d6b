"""Sections that change in digest.toml: `digest sections list` and `rename`, and the warning of
`digest check` and `digest send` about sections readers chose that no longer exist. Through
the CLI, on both engines."""

from __future__ import annotations

import json

import pytest

from digest.exits import ExitCode
from tests.support.cli import run
from tests.support.snapshot import table_rows
from tests.support.values import ROOT, SAMPLE_COUNTS

# The readers of subscribers/example.csv who chose launch-pad by name (Ada takes every section).
LAUNCH_PAD_READERS = ("margaret.hamilton@example.com", "valentina@example.net", "yuri@example.org")


@pytest.fixture
def renamed_config(loaded, monkeypatch):
    """The sample newsletter after its editor renamed the section launch-pad to launches in
    digest.toml (same feed, new slug and title)."""
    text = (ROOT / "digest.toml").read_text().replace('"samples/', f'"{ROOT}/samples/')
    path = loaded / "renamed.toml"
    path.write_text(
        text.replace('slug = "launch-pad"', 'slug = "launches"').replace(
            'title = "Launch Pad"', 'title = "Launches"'
        )
    )
    monkeypatch.setenv("DIGEST_CONFIG", str(path))
    return path


def _sections_of(email: str) -> list[str]:
    shown = json.loads(run("subscribers", "show", email, "--json").stdout)
    return sorted(shown["subscriptions"]["daily"])


def _stored_in(section: str) -> int:
    out = run("articles", "list", "--section", section, "--format", "json", "--limit", "500")
    return len(out.stdout.splitlines())


def test_check_and_send_warn_about_sections_readers_hold_that_digest_toml_lost(
    renamed_config,
):
    checked = run("check")
    warning = (
        "warning: list daily: 3 subscriber(s) chose sections that are no longer in "
        "digest.toml: launch-pad (3)"
    )
    assert warning in checked.stderr
    assert "digest sections rename OLD NEW" in checked.stderr
    assert json.loads(run("check", "--json").stdout)["advice"][0].startswith(
        "list daily: 3 subscriber(s)"
    )
    sent = run("send", "--json")
    assert any("launch-pad (3)" in w for w in json.loads(sent.stdout)["warnings"])


def test_rename_moves_readers_and_unsent_articles_and_frozen_editions_keep_theirs(
    loaded, monkeypatch, db_url
):
    run("send")  # today's edition is sent: frozen, with launch-pad in it
    frozen = table_rows(db_url, "edition_articles")["edition_articles"]
    assert "launch-pad" in {row[2] for row in frozen}
    stored = _stored_in("launch-pad")
    assert stored == SAMPLE_COUNTS["launch-pad.xml"]

    text = (ROOT / "digest.toml").read_text().replace('"samples/', f'"{ROOT}/samples/')
    path = loaded / "renamed.toml"
    path.write_text(text.replace('slug = "launch-pad"', 'slug = "launches"'))
    monkeypatch.setenv("DIGEST_CONFIG", str(path))

    dry = json.loads(
        run("sections", "rename", "launch-pad", "launches", "--dry-run", "--json").stdout
    )
    assert (dry["subscribers"], dry["articles"], dry["dry_run"]) == (3, stored, True)
    assert "launch-pad" in _sections_of("valentina@example.net")  # nothing changed

    said = run("sections", "rename", "launch-pad", "launches").stdout
    assert "moved launch-pad -> launches: 3 subscriber(s)" in said
    for email in LAUNCH_PAD_READERS:
        assert "launches" in _sections_of(email) and "launch-pad" not in _sections_of(email)
    assert _sections_of("yuri@example.org") == ["drone-space", "internet-space", "launches"]
    assert _sections_of("grace.hopper@example.com") == ["military-space", "missile-defense"]
    assert (_stored_in("launches"), _stored_in("launch-pad")) == (stored, 0)
    assert table_rows(db_url, "edition_articles")["edition_articles"] == frozen
    assert "no longer in digest.toml" not in run("check").stderr


def test_renaming_to_a_section_digest_toml_lacks_says_to_add_it_first(loaded, db_url):
    before = table_rows(db_url, "subscriptions", "articles")
    result = run("sections", "rename", "launch-pad", "rockets", code=ExitCode.CONFIG)
    assert "'rockets' is not a section of" in result.stderr
    assert "add a [[sections]] entry with slug = 'rockets'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert table_rows(db_url, "subscriptions", "articles") == before


def test_renaming_a_section_nobody_has_is_an_error(loaded):
    result = run("sections", "rename", "lunch-pad", "launch-pad", code=ExitCode.CONFIG)
    assert "no section 'lunch-pad'" in result.stderr


def test_a_reader_holding_both_sections_keeps_one(loaded):
    # Yuri chose launch-pad, internet-space and drone-space; both slugs stay in digest.toml.
    run("sections", "rename", "drone-space", "internet-space")
    assert _sections_of("yuri@example.org") == ["internet-space", "launch-pad"]


def test_sections_list_shows_each_section_with_its_readers_and_articles(renamed_config):
    rows = {
        r["slug"]: r
        for r in map(json.loads, run("sections", "list", "--format", "json").stdout.splitlines())
    }
    assert rows["launches"]["in_digest_toml"] and rows["launches"]["lists"] == ["daily"]
    assert rows["military-space"]["subscribers"] == 2  # Grace and Margaret chose it
    assert rows["launch-pad"] == {
        "slug": "launch-pad",
        "title": "Launch Pad",
        "lists": [],
        "subscribers": 3,
        "articles": SAMPLE_COUNTS["launch-pad.xml"],
        "in_digest_toml": False,
    }
    csv = run("sections", "list", "--format", "csv").stdout.splitlines()
    assert csv[0] == "slug,title,lists,subscribers,articles"
    assert f"launch-pad,Launch Pad,(not in digest.toml),3,{SAMPLE_COUNTS['launch-pad.xml']}" in csv
    assert "6 shown" in run("sections", "list").stdout


def test_sign_ups_waiting_for_confirmation_follow_the_rename(loaded, db_url):
    from digest.pipeline import utcnow
    from digest.store import open_store

    store = open_store(db_url)
    try:
        now = utcnow()
        chosen = frozenset({"launch-pad", "drone-space"})
        store.queue_signup(
            "new@example.org",
            "",
            "daily",
            chosen,
            "127.0.0.1",
            "m",
            now,
            client_limit=10,
            window_seconds=3600,
        )
        assert store.request_confirmation("later@example.org", "", "daily", chosen, now, None)
    finally:
        store.close()
    moved = json.loads(run("sections", "rename", "launch-pad", "internet-space", "--json").stdout)
    assert moved["pending"] == 2
    rows = table_rows(db_url, "signups", "confirmations")
    held = {row[4] for row in rows["signups"]} | {row[3] for row in rows["confirmations"]}
    assert held == {"drone-space internet-space"}
