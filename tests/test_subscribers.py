"""Subscriber validation, import files and their round trip through a real SQLite store."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.audience import addresses
from digest.audience import files as subs
from digest.errors import SubscriberError
from digest.models import Membership, NewSubscriber, SubscriberStatus
from tests.support.values import EXAMPLE_CSV, NOW

LISTS = ["daily"]
SAMPLE_SLUGS = ["internet-space", "military-space", "drone-space", "missile-defense", "launch-pad"]


def read(path: Path):
    return subs.read_file(path, lists=LISTS, sections=SAMPLE_SLUGS, default_lists=("daily",))


def write(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_example_csv_is_valid():
    good, rejects = read(EXAMPLE_CSV)
    assert rejects == []
    assert len(good) == 6
    grace = next(g for g in good if g.email.startswith("grace"))
    assert grace.sections == frozenset({"military-space", "missile-defense"})
    assert next(g for g in good if g.email.startswith("ada")).sections is None


@pytest.mark.parametrize(
    "address",
    ["not-an-address", "a@b", "two@@example.com", "x@example.com\r\nBcc: y@example.com", ""],
)
def test_invalid_addresses_are_refused(address):
    with pytest.raises(SubscriberError):
        addresses.normalize_email(address)


def test_an_internationalized_domain_is_kept_in_the_idna_form_every_relay_routes():
    assert addresses.normalize_email("  José@Exämple.com ") == "José@xn--exmple-cua.com"
    assert addresses.normalize_email("a@xn--exmple-cua.com") == "a@xn--exmple-cua.com"
    assert not addresses.needs_smtputf8("a@xn--exmple-cua.com")
    assert addresses.needs_smtputf8("José@xn--exmple-cua.com")


def test_matching_ignores_case_but_never_merges_sharp_s_with_ss():
    key = addresses.email_key
    assert key("Straße@Example.com") == key("STRAẞE@example.com") == "straße@example.com"
    assert key("strasse@example.com") != key("straße@example.com")
    assert key("ﬁ@example.com") != key("fi@example.com")
    assert key("José@exämple.com") == key("josé@xn--exmple-cua.com")


@pytest.mark.parametrize("name", ["Eve\u202egnp.exe", "Mallory\x9b31m", "Trudy\u2066x"])
def test_names_with_c1_controls_or_bidirectional_overrides_are_refused(name):
    with pytest.raises(SubscriberError, match="control or bidirectional"):
        addresses.clean_name(name)
    assert "\\u" in addresses.printable(name)


def test_name_with_line_break_is_refused():
    with pytest.raises(SubscriberError, match="line break"):
        addresses.clean_name("Eve\r\nBcc: x@example.com")


def test_bad_rows_reported_with_line_numbers_good_rows_kept(tmp_path):
    path = write(
        tmp_path,
        (
            "email,name,sections\n"
            "ok1@example.com,One,\n"
            "broken-address,Two,\n"
            "ok2@example.com,Three,launch-pad\n"
            "ok3@example.com,Four,no-such-section\n"
            "OK1@example.com,Again,\n"
            "ok4@example.com,Five,,extra\n"
            '"ok5@example.com","Multi\nline",\n'
        ),
    )
    good, rejects = read(path)
    assert [g.email for g in good] == ["ok1@example.com", "ok2@example.com"]
    by_line = {r.line: r.reason for r in rejects}
    assert set(by_line) == {3, 5, 6, 7, 9}
    assert "not a valid email address" in by_line[3]
    assert "unknown section 'no-such-section'" in by_line[5]
    assert "repeats line 2" in by_line[6]
    assert "fields" in by_line[7]
    assert "line break" in by_line[9]


def test_header_without_email_column(tmp_path):
    with pytest.raises(SubscriberError, match="no 'email' column"):
        read(write(tmp_path, "mail,name\nx@example.com,X\n"))


def test_not_utf8_is_a_clear_error(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("email,name\nx@example.com,Andr\xe9\n".encode("latin-1"))
    with pytest.raises(SubscriberError, match="not UTF-8"):
        read(path)


def test_jsonl_import_format(tmp_path):
    path = write(
        tmp_path,
        '{"email": "a@example.com", "sections": ["launch-pad"]}\n\n{not json\n["a list"]\n',
        "in.jsonl",
    )
    good, rejects = read(path)
    assert good[0].sections == frozenset({"launch-pad"})
    assert [(r.line, r.reason.split(":")[0]) for r in rejects] == [
        (3, "not JSON"),
        (4, "not a JSON object"),
    ]


def _seed(store):
    store.ensure_lists([("daily", "Daily")])


def test_store_import_is_idempotent_and_case_insensitive(store):
    _seed(store)
    good, _ = read(EXAMPLE_CSV)
    assert store.add_subscribers(good, NOW, existing="update") == {
        "added": 6,
        "updated": 0,
        "skipped": 0,
        "changes": [],
    }
    assert store.add_subscribers(good, NOW, existing="update") == {
        "added": 0,
        "updated": 0,
        "skipped": 6,
        "changes": [],
    }
    shouting = NewSubscriber(
        email="ADA.LOVELACE@EXAMPLE.COM", name="Ada Lovelace", lists=("daily",)
    )
    with pytest.raises(SubscriberError, match="already a subscriber"):
        store.add_subscribers([shouting], NOW)
    assert len(store.subscribers()) == 6


def test_failed_add_writes_nothing(store):
    _seed(store)
    items = [
        NewSubscriber(email="new@example.com", lists=("daily",)),
        NewSubscriber(email="other@example.com", lists=("weekly",)),
    ]
    with pytest.raises(SubscriberError, match="no list named 'weekly'"):
        store.add_subscribers(items, NOW)
    assert store.subscribers() == []


def test_import_never_resubscribes_someone_who_left(store):
    _seed(store)
    item = NewSubscriber(email="left@example.com", name="Left", lists=("daily",))
    store.add_subscribers([item], NOW)
    store.set_status("left@example.com", SubscriberStatus.unsubscribed, NOW)
    store.add_subscribers(
        [NewSubscriber(email="left@example.com", name="Left again", lists=("daily",))],
        NOW,
        existing="update",
    )
    assert store.subscriber("left@example.com").status is SubscriberStatus.unsubscribed


def test_export_then_import_round_trips(store, tmp_path):
    _seed(store)
    good, _ = read(EXAMPLE_CSV)
    store.add_subscribers(good, NOW)
    buffer = io.StringIO()
    assert subs.write_csv(store.records(), buffer) == 6
    exported = write(tmp_path, buffer.getvalue(), "export.csv")
    again, rejects = read(exported)
    assert rejects == []
    original = {g.email: (g.name, g.sections, g.status) for g in good}
    assert {g.email: (g.name, g.sections, g.status) for g in again} == original


@pytest.mark.sqlite_only  # iterdump is SQLite's (see test_postgres.py)
def test_erase_keeps_only_a_hash_and_blocks_re_adding(store):
    _seed(store)
    store.add_subscribers([NewSubscriber(email="gone@example.com", lists=("daily",))], NOW)
    store.remove_subscriber("gone@example.com", NOW, erase=True)
    assert store.subscriber("gone@example.com") is None
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT email, reason FROM suppressions").all()
        dump = "\n".join(conn.connection.iterdump())
    assert rows == [(None, "erased")]
    assert "gone@example.com" not in dump
    with pytest.raises(SubscriberError, match="suppression list"):
        store.add_subscribers([NewSubscriber(email="Gone@Example.com", lists=("daily",))], NOW)
    store.add_subscribers(
        [NewSubscriber(email="gone@example.com", lists=("daily",))], NOW, allow_suppressed=True
    )


def test_recipients_are_active_and_unsuppressed(store):
    _seed(store)
    good, _ = read(EXAMPLE_CSV)
    store.add_subscribers(good, NOW)
    store.suppress("valentina@example.net", "hard-bounce", NOW)
    emails = {r.email for r in store.recipients("daily")}
    assert "former.reader@example.com" not in emails  # unsubscribed in the file
    assert "valentina@example.net" not in emails
    assert len(emails) == 4
    grace = store.subscriber("grace.hopper@example.com")
    assert store.deliverable(grace.id, "daily")
    store.set_status(grace.email, SubscriberStatus.unsubscribed, NOW)
    assert not store.deliverable(grace.id, "daily")


def _two_lists(store):
    store.ensure_lists([("daily", "Daily"), ("weekly", "Weekly")])


def test_export_keeps_list_states_sections_and_consent(store, tmp_path):
    _two_lists(store)
    consent_at = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    store.add_subscribers(
        [
            NewSubscriber(
                email="many@example.com",
                name="Many",
                consent_source="paper form",
                consent_at=consent_at,
                consent_ip="192.0.2.7",
                memberships=(
                    Membership("daily", "active", True, frozenset({"launch-pad"})),
                    Membership("weekly", "unsubscribed", False, None),
                ),
            )
        ],
        NOW,
    )
    for writer, name in ((subs.write_csv, "out.csv"), (subs.write_jsonl, "out.jsonl")):
        buffer = io.StringIO()
        writer(store.records(), buffer)
        path = write(tmp_path, buffer.getvalue(), name)
        good, rejects = subs.read_file(
            path, lists=["daily", "weekly"], sections=SAMPLE_SLUGS, default_lists=()
        )
        assert rejects == []
        (item,) = good
        assert item.memberships == (
            Membership("daily", "active", True, frozenset({"launch-pad"})),
            Membership("weekly", "unsubscribed", False, None),
        )
        assert (item.consent_source, item.consent_at, item.consent_ip) == (
            "paper form",
            consent_at,
            "192.0.2.7",
        )


def test_list_states_and_qualified_sections_in_a_file(tmp_path):
    path = write(
        tmp_path,
        "email,lists,sections\n"
        "a@example.com,daily:paused;weekly,weekly:launch-pad\n"
        "b@example.com,daily:gone,\n"
        "c@example.com,daily,monthly:launch-pad\n",
    )
    good, rejects = subs.read_file(
        path, lists=["daily", "weekly"], sections=SAMPLE_SLUGS, default_lists=()
    )
    assert good[0].memberships == (
        Membership("daily", "active", True, None),
        Membership("weekly", "active", False, frozenset({"launch-pad"})),
    )
    assert [(r.line, r.reason.split(" (")[0]) for r in rejects] == [
        (3, "unknown list state 'gone' in 'daily:gone'"),
        (4, "section 'monthly:launch-pad' names a list the row is not on"),
    ]


def test_dry_run_counts_and_rolls_back(store):
    _seed(store)
    good, _ = read(EXAMPLE_CSV)
    assert store.add_subscribers(good, NOW, existing="update", dry_run=True)["added"] == 6
    assert store.records() == []


def test_ids_of_removed_subscribers_are_never_reused(store):
    _seed(store)
    store.add_subscribers(
        [
            NewSubscriber(email="a@example.com", lists=("daily",)),
            NewSubscriber(email="b@example.com", lists=("daily",)),
        ],
        NOW,
    )
    gone = store.subscriber("b@example.com").id
    store.remove_subscriber("b@example.com", NOW, erase=True)
    store.add_subscribers([NewSubscriber(email="c@example.com", lists=("daily",))], NOW)
    assert store.subscriber("c@example.com").id > gone


def test_leaving_the_last_list_unsubscribes_and_resubscribe_needs_force_when_suppressed(store):
    _seed(store)
    store.add_subscribers([NewSubscriber(email="l@example.com", lists=("daily",))], NOW)
    sid = store.subscriber("l@example.com").id
    assert store.set_membership(sid, "daily", NOW, state="unsubscribed")
    assert store.subscriber("l@example.com").status is SubscriberStatus.unsubscribed
    assert not store.deliverable(sid, "daily")
    store.suppress("l@example.com", "complaint", NOW)
    with pytest.raises(SubscriberError, match="suppression list"):
        store.resubscribe("l@example.com", NOW)
    store.resubscribe("l@example.com", NOW, lift_suppression=True)
    assert store.deliverable(sid, "daily")


def test_an_erasure_keeps_ss_and_sharp_s_apart_and_holds_for_an_old_idn_hash(store):
    import hashlib

    _seed(store)
    store.add_subscribers([NewSubscriber(email="strasse@example.com", lists=("daily",))], NOW)
    store.remove_subscriber("strasse@example.com", NOW, erase=True)
    store.add_subscribers([NewSubscriber(email="straße@example.com", lists=("daily",))], NOW)
    assert store.suppression("straße@example.com") is None
    # An address at an internationalized domain erased by an earlier version.
    old = hashlib.sha256("erased@bücher.example".encode()).hexdigest()
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO suppressions (address_hash, email, reason, created_at) "
            f"VALUES ('{old}', NULL, 'erased', '2026-01-01')"
        )
    with pytest.raises(SubscriberError, match="suppression list"):
        store.add_subscribers(
            [NewSubscriber(email="Erased@xn--bcher-kva.example", lists=("daily",))], NOW
        )
