"""`digest send --to`: test copies of the edition as it stands, through the CLI, on a real store
and a recording SMTP server (or the Maildir outbox), leaving the ledger and the editions as
they were."""

from __future__ import annotations

import json
import mailbox
import re
from email import message_from_bytes, policy

import pytest

from digest.audience.tokens import read_token
from digest.compose import Recipient, make_environment, personalize
from digest.compose.proof import as_test_copy
from digest.exits import ExitCode
from digest.store import open_store
from tests.support.cli import run, sample_settings, set_settings
from tests.support.editions import compose, make_edition, parse
from tests.support.newsletters import TWO_LISTS, two_list_config
from tests.support.snapshot import table_rows
from tests.support.values import SECRET_BYTES

EDITOR, DESK = "editor@example.org", "desk@example.org"
STORE_TABLES = ("editions", "edition_articles", "deliveries", "subscribers", "subscriptions")
ACTIVE_READERS = 5  # the active readers of subscribers/example.csv


@pytest.fixture
def relay(loaded, monkeypatch, mail_server):
    """The sample newsletter loaded, sending through the recording SMTP server."""
    monkeypatch.setenv("DIGEST_SMTP_URL", f"smtp://{mail_server.host}:{mail_server.port}")
    return mail_server


def _parsed(raw: bytes):
    return message_from_bytes(raw, policy=policy.default)


def _text(message) -> str:
    return message.get_body(("plain",)).get_content()


def _tokens(message) -> dict[str, tuple[int, str] | None]:
    """The unsubscribe and preferences tokens of a message, read with the tests' secret."""
    body = _text(message)
    found = {}
    for path, purpose in (("u", "unsubscribe"), ("p", "preferences")):
        token = re.search(rf"/{path}/([A-Za-z0-9_-]+)", body)
        assert token, f"no /{path}/ link in the message"
        found[purpose] = read_token(SECRET_BYTES, token.group(1), purpose)
    return found


def test_a_test_send_mails_only_the_named_addresses_and_leaves_the_store_as_it_was(relay, db_url):
    before = table_rows(db_url, *STORE_TABLES)
    assert before["editions"] == []  # nothing has created today's edition yet
    result = run("send", "--to", f"{EDITOR}, Desk@Example.ORG", "--json")
    report = json.loads(result.stdout)
    assert report["status"] == "test-sent" and report["list"] == "daily"
    assert [(c["to"], c["state"]) for c in report["copies"]] == [
        (EDITOR, "sent"),
        ("Desk@example.org", "sent"),  # normalized: the domain in lower case
    ]
    assert sorted(relay.handler.recipients()) == sorted([EDITOR, "Desk@example.org"])
    messages = [_parsed(m.raw) for m in relay.handler.messages]
    assert all(str(m["Subject"]).startswith("[TEST] Orbital Dispatch Daily") for m in messages)
    assert str(messages[0]["Subject"]) == report["subject"]
    assert messages[0]["Message-ID"] != messages[1]["Message-ID"]  # two messages, not one
    assert str(messages[0]["To"]) == f"Sample Reader <{EDITOR}>"
    for message in messages:  # every section, links that act for nobody
        assert all(s.upper() in _text(message) for s in ("Internet Space", "Launch Pad"))
        assert _tokens(message) == {
            "unsubscribe": (0, "daily"),
            "preferences": (0, "daily"),
        }
    assert relay.handler.messages[0].mail_from == "newsletter@orbital-dispatch.example"
    assert table_rows(db_url, *STORE_TABLES) == before

    # The real send afterwards mails every reader: the test send skipped no one.
    sent = json.loads(run("send", "--json").stdout)
    assert (sent["status"], sent["sent"], sent["already_sent"]) == ("complete", ACTIVE_READERS, 0)


def test_a_test_send_after_the_real_one_changes_neither_its_ledger_nor_its_state(relay, db_url):
    run("send")
    frozen = table_rows(db_url, *STORE_TABLES)
    assert [row[3] for row in frozen["editions"]] == ["complete"]
    assert len(frozen["deliveries"]) == ACTIVE_READERS
    run("send", "--to", EDITOR)
    assert (
        relay.handler.recipients()[-1] == EDITOR
        and len(relay.handler.messages) == ACTIVE_READERS + 1
    )
    assert table_rows(db_url, *STORE_TABLES) == frozen
    status = json.loads(run("status", "--json").stdout)
    assert (status["status"], status["total"]) == ("complete", ACTIVE_READERS)


def test_as_a_subscriber_the_copy_has_their_sections_and_name_but_no_link_of_theirs(relay):
    report = json.loads(
        run("send", "--to", EDITOR, "--as", "grace.hopper@example.com", "--json").stdout
    )
    assert report["reader"] == "grace.hopper@example.com"
    assert report["sections"] == ["military-space", "missile-defense"]
    message = _parsed(relay.handler.messages[0].raw)
    assert str(message["To"]) == f"Grace Hopper <{EDITOR}>"
    text = _text(message)
    assert "MILITARY SPACE" in text and "MISSILE DEFENSE" in text
    assert "INTERNET SPACE" not in text and "LAUNCH PAD" not in text
    assert _tokens(message)["unsubscribe"] == (0, "daily")  # not Grace's id
    assert _tokens(message)["preferences"] == (0, "daily")


def test_the_subject_prefix_is_the_one_given_and_a_line_break_in_it_is_refused(relay):
    run("send", "--to", EDITOR, "--subject-prefix", "[PROOF 2] ")
    assert str(_parsed(relay.handler.messages[0].raw)["Subject"]).startswith("[PROOF 2] Orbital")
    result = run("send", "--to", EDITOR, "--subject-prefix", "[X]\r\nBcc: x@evil.example", code=2)
    assert "line break" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert len(relay.handler.messages) == 1


def test_addresses_of_people_who_left_are_refused_saying_why_and_nothing_is_sent(relay, db_url):
    run("subscribers", "unsubscribe", "valentina@example.net", "--list", "daily")
    run("subscribers", "remove", "yuri@example.org", "--erase")
    store = open_store(db_url)
    try:
        from digest.pipeline import utcnow

        store.suppress("margaret.hamilton@example.com", "complaint", utcnow())
    finally:
        store.close()
    result = run(
        "send",
        "--to",
        f"{EDITOR},valentina@example.net,yuri@example.org,Margaret.Hamilton@example.com,"
        "former.reader@example.com",
        code=ExitCode.SUBSCRIBER,
    )
    error = result.stderr.strip()
    assert len(error.splitlines()) == 1 and error.startswith("error: refused, nothing sent")
    assert "valentina@example.net unsubscribed;" in error  # from her only list
    assert "yuri@example.org was erased" in error
    assert "Margaret.Hamilton@example.com is on the suppression list (complaint)" in error
    assert "former.reader@example.com unsubscribed" in error
    assert EDITOR not in error
    assert relay.handler.messages == []


def test_a_bad_address_is_one_clear_line_and_nothing_is_sent(relay):
    result = run("send", "--to", f"{EDITOR},not-an-address", code=ExitCode.SUBSCRIBER)
    assert result.stderr.startswith("error: --to: 'not-an-address' is not a valid email address")
    assert len(result.stderr.strip().splitlines()) == 1
    assert relay.handler.messages == []


@pytest.mark.parametrize(
    "args",
    [("--dry-run",), ("--workers", "2"), ("--resend-unknown",)],
    ids=["dry-run", "workers", "resend-unknown"],
)
def test_options_of_a_real_send_do_not_go_with_to(relay, args):
    result = run("send", "--to", EDITOR, *args, code=ExitCode.CONFIG)
    assert "--to sends test copies only" in result.stderr
    assert relay.handler.messages == []


def test_as_and_subject_prefix_without_to_are_refused_before_anything_is_sent(relay, db_url):
    result = run("send", "--as", "grace.hopper@example.com", code=ExitCode.CONFIG)
    assert "go with --to" in result.stderr
    assert relay.handler.messages == [] and table_rows(db_url, "editions")["editions"] == []


def test_as_someone_not_on_the_list_is_an_error(relay):
    result = run("send", "--to", EDITOR, "--as", "nobody@example.org", code=ExitCode.SUBSCRIBER)
    assert "--as: no subscriber nobody@example.org" in result.stderr
    assert relay.handler.messages == []


def test_without_a_relay_the_copies_go_to_the_outbox_each_its_own_file(loaded, db_url):
    before = table_rows(db_url, *STORE_TABLES)
    report = json.loads(run("send", "--to", f"{EDITOR},{DESK}", "--json").stdout)
    assert report["transport"] == "maildir"
    run("send", "--to", EDITOR)  # again, after a fix: a new file, not the old one replaced
    box = mailbox.Maildir(loaded / "outbox", create=False)
    messages = [box.get_bytes(key) for key in box.iterkeys()]
    assert len(messages) == 3
    assert all(b"\r\n" not in raw for raw in messages)  # the outbox stores LF line endings
    assert sorted(str(_parsed(raw)["To"]) for raw in messages) == sorted(
        [f"Sample Reader <{EDITOR}>", f"Sample Reader <{EDITOR}>", f"Sample Reader <{DESK}>"]
    )
    assert all(str(_parsed(raw)["Subject"]).startswith("[TEST] ") for raw in messages)
    assert table_rows(db_url, *STORE_TABLES) == before


def test_with_two_lists_every_list_is_test_sent_or_the_one_named(monkeypatch, tmp_path, db_url):
    set_settings(
        monkeypatch,
        sample_settings(
            db_url,
            DIGEST_CONFIG=str(two_list_config(tmp_path)),
            DIGEST_OUTBOX=str(tmp_path / "outbox"),
        ),
    )
    run("init")
    run("fetch")
    lines = run("send", "--to", EDITOR, "--json").stdout.splitlines()
    assert [json.loads(line)["list"] for line in lines] == list(TWO_LISTS)
    one = run("send", "--to", EDITOR, "--list", "weekly", "--json").stdout.splitlines()
    assert [json.loads(line)["list"] for line in one] == ["weekly"]
    assert table_rows(db_url, "editions", "deliveries") == {"editions": [], "deliveries": []}


def test_with_two_lists_an_address_that_left_one_list_gets_the_other_only(
    monkeypatch, tmp_path, db_url
):
    set_settings(
        monkeypatch,
        sample_settings(
            db_url,
            DIGEST_CONFIG=str(two_list_config(tmp_path)),
            DIGEST_OUTBOX=str(tmp_path / "outbox"),
        ),
    )
    readers = tmp_path / "readers.csv"
    readers.write_text(f"email,lists\n{EDITOR},daily;weekly\n")
    run("init")
    run("fetch")
    run("subscribers", "import", str(readers))
    run("subscribers", "unsubscribe", EDITOR, "--list", "weekly")
    lines = run("send", "--to", EDITOR, "--json", code=ExitCode.SUBSCRIBER).stdout.splitlines()
    daily, weekly = (json.loads(line) for line in lines)
    assert (daily["list"], daily["sent"]) == ("daily", 1)
    assert weekly["list"] == "weekly" and weekly["exit_code"] == ExitCode.SUBSCRIBER
    assert f"{EDITOR} unsubscribed from list weekly" in weekly["error"]
    assert len(mailbox.Maildir(tmp_path / "outbox", create=False)) == 1


@pytest.mark.parametrize("prefix", ["[X]\r\nBcc: x@evil.example ", "[X]\n\nbody ", "[\u2028X] "])
def test_a_line_break_in_a_prefix_never_reaches_the_headers_whoever_calls(newsletter, prefix):
    lst = newsletter.lists[0]
    _, template = compose(make_edition(newsletter), newsletter, lst, make_environment())
    message = personalize(template, Recipient(0, EDITOR, "Sample Reader"), secret=SECRET_BYTES)
    copy = parse(as_test_copy(message, template, prefix=prefix, message_id="<t.1@x.example>").raw)
    assert copy["Bcc"] is None and copy["Message-ID"] == "<t.1@x.example>"
    assert str(copy["Subject"]).startswith("[X]") or str(copy["Subject"]).startswith("[ X]")
    assert not any(ch in str(copy["Subject"]) for ch in "\r\n\u2028")
    assert (
        copy.get_body(("plain",)).get_content()
        == parse(message.raw).get_body(("plain",)).get_content()
    )


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_a_signed_test_copy_verifies_as_the_relay_received_it(relay, monkeypatch, tmp_path, kind):
    import base64

    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ed25519.Ed25519PrivateKey.generate()
    )
    pem = tmp_path / "dkim.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pem.chmod(0o600)
    monkeypatch.setenv("DIGEST_DKIM_KEY_FILE", str(pem))
    monkeypatch.setenv("DIGEST_DKIM_SELECTOR", "s1")
    if kind == "rsa":
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    else:
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    record = f"v=DKIM1; k={kind}; p={base64.b64encode(public).decode()}".encode()

    run("send", "--to", EDITOR)

    [received] = relay.handler.messages
    # The copy's Subject and Message-ID differ in length from the reader's message it is
    # made from: the signature covers the copy's bytes all the same.
    assert received.raw.startswith(b"DKIM-Signature:")
    assert str(_parsed(received.raw)["Subject"]).startswith("[TEST] ")
    assert dkim.verify(received.raw, dnsfunc=lambda name, timeout=5: record)
