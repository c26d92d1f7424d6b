"""Bounce and complaint processing on real returned mail (tests/data/bounces, see SOURCES.md):
who failed and why, and whom a report may act on: only a delivery digest made, proven by a VERP
token, the returned Message-ID or (without VERP) a recent delivery to the address."""

from __future__ import annotations

import asyncio
import json
import mailbox
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path

import pytest

from digest import pipeline
from digest.audience import bounces
from digest.audience.tokens import make_token
from digest.config import load_settings
from digest.models import NewSubscriber, SubscriberStatus
from tests.support.values import DATA, NOW, ROOT, SECRET, SECRET_BYTES

BOUNCES = DATA / "bounces"


def found(name: str) -> list[tuple[str | None, str, str]]:
    """(recipient, reason, outcome) of each recipient a corpus message names."""
    return [
        (r.recipient, r.reason, r.outcome) for r in bounces.classify((BOUNCES / name).read_bytes())
    ]


# -- who failed and why -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,expected",
    [
        # RFC 3464 DSNs: the per-recipient fields
        (
            "sisimai/lhost-postfix-01.eml",
            [("r@p351355.pool.example.ne.jp", "user-unknown", "hard")],
        ),
        (
            "sisimai/crlf/lhost-postfix-01.eml",
            [("r@p351355.pool.example.ne.jp", "user-unknown", "hard")],
        ),
        (
            "sisimai/cr-only/lhost-postfix-01.eml",
            [("r@p351355.pool.example.ne.jp", "user-unknown", "hard")],
        ),
        ("sisimai/lhost-postfix-06.eml", [("kijitora@neko.example.jp", "host-unknown", "hard")]),
        (
            "sisimai/lhost-postfix-05.eml",
            [("kijitora@example.org", "user-unknown", "soft")],
        ),  # 4.1.1
        ("sisimai/lhost-postfix-70.eml", [("kijitora@google.example.com", "blocked", "soft")]),
        ("sisimai/lhost-sendmail-05.eml", [("kijitora@example.org", "message-too-big", "soft")]),
        ("sisimai/lhost-barracuda-01.eml", [("kijitora@example.org", "spam-filtered", "soft")]),
        ("sisimai/lhost-exchange2007-01.eml", [("mikeneko@example.co.jp", "user-unknown", "hard")]),
        ("sisimai/lhost-outlook-01.eml", [("kijitora@example.jp", "mailbox-full", "soft")]),
        ("sisimai/rfc3464-01.eml", [("userunknown@bouncehammer.jp", "user-unknown", "hard")]),
        ("flanker/mailbox-full.eml", [("user@aol.com", "mailbox-full", "soft")]),
        ("flanker/office365.eml", [("noname@example.com", "host-unknown", "hard")]),
        ("flanker/delayed-broken.eml", [("demo@example.com", "mailbox-full", "soft")]),
        ("mailman/dsn_09.eml", [("userx@example.com", "relay-refused", "soft")]),
        ("mailman/dsn_02.eml", [("zzzzz@example.uk", "expired", "soft")]),  # X.400 Final-Recipient
        (
            "mailman/netscape_01.eml",
            [("aaaaa@corel.com", "expired", "soft"), ("bbbbb@corel.com", "expired", "soft")],
        ),
        # Non-standard bounces: the report's own text
        ("sisimai/lhost-qmail-01.eml", [("kijitora@example.ne.jp", "user-unknown", "hard")]),
        ("sisimai/lhost-qmail-10.eml", [("kijitora@neko2.example.co.jp", "suspended", "soft")]),
        ("mailman/qmail_01.eml", [("userx@example.de", "undefined", "soft")]),
        ("mailman/postfix_01.eml", [("xxxxx@local.ie", "user-unknown", "hard")]),
        ("mailman/postfix_02.eml", [("yyyyy@digicool.com", "host-unknown", "hard")]),
        ("sisimai/lhost-exim-52.eml", [("kijitora@example.com", "undefined", "soft")]),  # malformed
        ("mailman/exim_01.eml", [("userx@its.example.nl", "user-unknown", "hard")]),
        ("sisimai/lhost-gmx-01.eml", [("shironeko@example.jp", "mailbox-full", "soft")]),
        (
            "mailman/sendmail_01.eml",
            [("zzzzz@shaft.coal.nl", "mail-loop", "soft"), ("zzzzz@nfg.nl", "mail-loop", "soft")],
        ),
        ("sisimai/lhost-exchange2003-01.eml", [("kijitora@example.jp", "user-unknown", "hard")]),
        ("mailman/microsoft_01.eml", [("userx@example.COM", "user-unknown", "hard")]),
        ("mailman/groupwise_01.eml", [("userx@example.EDU", "user-unknown", "hard")]),
        ("mailman/groupwise_02.eml", [("userx@example.com", "user-unknown", "hard")]),  # HTML only
        (
            "mailman/yahoo_04.eml",
            [
                ("userx@example.es", "mailbox-full", "soft"),
                ("usery@example.uk", "mailbox-full", "soft"),
            ],
        ),
        (
            "mailman/yahoo_10.eml",
            [
                ("userx@example.com", "user-unknown", "hard"),
                ("usery@example.com", "suspended", "soft"),
                ("userz@example.com", "user-unknown", "hard"),
            ],
        ),
        ("sisimai/lhost-yahoo-01.eml", [("kijitora@example.org", "user-unknown", "hard")]),
        ("mailman/aol_01.eml", [("screenname@aol.com", "blocked", "soft")]),
        (
            "mailman/sina_01.eml",
            [("userx@sina.com", "undefined", "soft"), ("usery@sina.com", "undefined", "soft")],
        ),
        ("sisimai/lhost-domino-01.eml", [("kijitora@example.jp", "user-unknown", "hard")]),
        (
            "sisimai/lhost-dragonfly-01.eml",
            [("pseudo-local-part@google.example.com", "blocked", "soft")],
        ),
        ("flanker/gmail-no-dns.eml", [("user@example.comm", "host-unknown", "hard")]),
        (
            "own/novell-groupwise.eml",
            [
                ("ada.lovelace@campus.example.edu", "user-unknown", "hard"),
                ("c.babbage@campus.example.edu", "mailbox-full", "soft"),
            ],
        ),
        ("own/x400-wrapped.eml", [("g.hopper@navy.example.net", "user-unknown", "hard")]),
        ("own/html-only.eml", [("grace.h@contoso.example.com", "user-unknown", "hard")]),
        # Not failures
        ("sisimai/lhost-exim-38.eml", [("kijitora@example.co.jp", "delay-warning", "ignore")]),
        ("sisimai/lhost-gmail-06.eml", [("kijitora@example.jp", "delay-warning", "ignore")]),
        ("flanker/no-mx.eml", [("user@example.com", "delay-warning", "ignore")]),
        ("mailman/simple_03.eml", [("userx@example.za", "delay-warning", "ignore")]),
        ("sisimai/rfc3834-01.eml", [(None, "auto-reply", "ignore")]),
        ("sisimai/lhost-postfix-75.eml", [(None, "not-a-bounce", "ignore")]),
        ("sisimai/lhost-sendmail-14.eml", [(None, "not-a-bounce", "ignore")]),
        # Complaints
        ("sisimai/arf-01.eml", [("redacted@example.net", "complaint", "complaint")]),
        ("flanker/complaints/aol.eml", [("redacted@aol.com", "complaint", "complaint")]),
        ("flanker/complaints/yahoo.eml", [("user@yahoo.com", "complaint", "complaint")]),
    ],
)
def test_each_recipient_a_bounce_names_is_found_with_its_reason(name, expected):
    assert found(name) == expected


def test_the_failed_recipient_is_never_taken_from_the_returned_original():
    raw = (BOUNCES / "own/exchange-list-in-to.eml").read_bytes()
    raw = raw.replace(b"LIST_ADDRESS", b"digest@news.example.com")
    raw = raw.replace(b"READER_ADDRESS", b"reader@corp.example.org")
    assert [(r.recipient, r.reason) for r in bounces.classify(raw)] == [
        ("reader@corp.example.org", "user-unknown")
    ]


def test_an_x400_final_recipient_gives_way_to_the_original_recipient():
    (report,) = bounces.classify((BOUNCES / "mailman/dsn_02.eml").read_bytes())
    assert report.recipient == "zzzzz@example.uk"
    (report,) = bounces.classify((BOUNCES / "mailman/dsn_04.eml").read_bytes())
    assert report.original_recipient == "userx@example.ch"  # a forward: both are kept


def test_status_codes_refine_the_reason_they_do_not_replace_the_text():
    assert bounces.reason_for("552 5.1.1 mailbox full", "5.1.1") == "mailbox-full"
    assert bounces.reason_for("550 recipient rejected", "5.1.1") == "user-unknown"
    assert bounces.reason_for("550 recipient rejected", None) == "blocked"
    assert bounces.reason_for("", "5.2.2") == "mailbox-full"
    assert bounces.reason_for("", None) == "undefined"
    assert bounces.outcome("user-unknown", "4.1.1") == "soft"  # the receiver was not sure
    assert bounces.outcome("user-unknown", "5.1.1") == "hard"


def test_one_table_maps_every_reason_and_only_a_dead_address_is_hard():
    named = {reason for reason, _ in bounces._TEXT_REASONS} | set(bounces._STATUS_REASONS.values())
    assert named <= set(bounces.REASONS)
    assert {r for r, o in bounces.REASONS.items() if o == "hard"} == {
        "user-unknown",
        "host-unknown",
    }
    assert set(bounces.REASONS.values()) == {"hard", "soft", "ignore", "complaint", "unsubscribe"}


def test_nothing_that_is_not_a_failure_counts_as_one():
    harmless = [
        "sisimai/rfc3834-01.eml",
        "sisimai/lhost-exim-38.eml",
        "sisimai/lhost-gmail-06.eml",
        "sisimai/lhost-sendmail-29.eml",
        "flanker/no-mx.eml",
        "sisimai/lhost-postfix-75.eml",
        "sisimai/lhost-sendmail-14.eml",
        "sisimai/not-bounce/is-not-bounce-01.eml",
        "sisimai/not-bounce/is-not-bounce-02.eml",
    ]
    for name in harmless:
        assert not any(r.is_failure for r in bounces.classify((BOUNCES / name).read_bytes())), name


def test_every_corpus_message_is_read_without_error():
    seen = {
        r.outcome
        for _, raw in bounces.read_mailbox(BOUNCES)
        for r in bounces.classify(raw)  # type: ignore[arg-type]
    }
    assert seen == {"hard", "soft", "ignore", "complaint"}


def test_bytes_that_are_no_mail_message_are_refused_in_one_line():
    with pytest.raises(bounces.BounceParseError, match="not a mail message"):
        bounces.classify(b"\x89PNG\r\n\x1a\n\x00\x00binary")


# -- whom a report may act on ------------------------------------------------------------------

PEOPLE = [
    "reader@corp.example.org",
    "ada.lovelace@campus.example.edu",
    "user@aol.com",
    "keeps@example.com",
    "digest@news.example.com",  # the list's own address, subscribed to itself
    *(f"reader{i:02d}@example.net" for i in range(30)),
]


class Sent:
    """A newsletter that really sent today's edition (the Maildir outbox): its context, the
    bytes each reader was sent, and the VERP address each came from (VERP on)."""

    def __init__(self, ctx: pipeline.Context, outbox: Path):
        self.ctx = ctx
        box = mailbox.Maildir(outbox, factory=None, create=True)
        self.raw = {}
        for key in box.iterkeys():
            raw = box.get_bytes(key)
            self.raw[str(message_from_bytes(raw)["To"]).strip("<>")] = raw
        lst = ctx.newsletter.get_list("daily")
        self.edition = pipeline.current_edition(ctx, lst, NOW, create=False)
        composer = pipeline.Composer(ctx, self.edition, lst, NOW)
        self.envelope = {
            r.email: composer.message(r).envelope_from for r in ctx.store.recipients("daily")
        }

    def status(self, email: str) -> str:
        return self.ctx.store.record(email).status.value


@pytest.fixture
def mailing(tmp_path, db_url):
    opened = []

    def open_(*, verp: bool, mailed: list[str] | None = None, **more) -> Sent:
        settings = load_settings(
            config=ROOT / "digest.toml",
            secret_key=SECRET,
            database_url=db_url,
            bounce_address="bounces@news.example.com" if verp else None,
            outbox=tmp_path / "outbox",
            soft_bounce_limit=3,
            soft_bounce_half_life_days=7,
            **more,
        )
        ctx = pipeline.Context.open(settings)
        opened.append(ctx)
        mailed = PEOPLE if mailed is None else mailed
        ctx.store.add_subscribers([NewSubscriber(email=e, lists=("daily",)) for e in mailed], NOW)
        pipeline.fetch(ctx, NOW)
        asyncio.run(pipeline.send(ctx, "daily", now=lambda: NOW))
        others = [e for e in PEOPLE if e not in mailed]
        ctx.store.add_subscribers([NewSubscriber(email=e, lists=("daily",)) for e in others], NOW)
        return Sent(ctx, tmp_path / "outbox")

    yield open_
    for ctx in opened:
        ctx.close()


def dsn(
    recipients: list[str],
    *,
    status: str = "5.1.1",
    says: str = "Recipient address rejected: User unknown in virtual mailbox table",
    returned: bytes | None = None,
) -> bytes:
    """A Postfix-style DSN naming ``recipients``, with ``returned`` attached (or only made-up
    headers: what a forger has)."""
    blocks = "".join(
        f"\nFinal-Recipient: rfc822; {r}\nAction: failed\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; 550 {status} <{r}>: {says}\n"
        for r in recipients
    )
    original = returned or (
        b"From: Orbital Dispatch <newsletter@orbital-dispatch.example>\n"
        b"To: someone@example.org\nMessage-ID: <2026-11-26.daily.1.000000000000@forged.example>\n"
        b"Subject: Orbital Dispatch\n\nhello\n"
    )
    return (
        (
            "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\n"
            "To: bounces@news.example.com\n"
            "Subject: Undelivered Mail Returned to Sender\n"
            "Date: Thu, 26 Nov 2026 07:00:00 +0000\n"
            "MIME-Version: 1.0\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
            "--B\nContent-Type: text/plain\n\nI'm sorry to have to inform you that your message "
            "could not be delivered.\n\n"
            "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n"
            f"{blocks}\n--B\nContent-Type: message/rfc822\n\n"
        ).encode()
        + original
        + b"\n--B--\n"
    )


def arf(recipient: str, returned: bytes | None = None) -> bytes:
    original = (
        returned
        or (
            f"From: newsletter@orbital-dispatch.example\nTo: {recipient}\n"
            "Message-ID: <forged@example.org>\nSubject: x\n\nhello\n"
        ).encode()
    )
    return (
        (
            "From: feedback@fbl.example.net\nTo: abuse@news.example.com\n"
            "Subject: Email Feedback Report\nDate: Thu, 26 Nov 2026 07:00:00 +0000\n"
            "MIME-Version: 1.0\n"
            'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\n\n'
            "--F\nContent-Type: text/plain\n\nThis is an email abuse report.\n\n"
            "--F\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n"
            f"User-Agent: FBL/1.0\nVersion: 1\nOriginal-Rcpt-To: {recipient}\n\n"
            "--F\nContent-Type: message/rfc822\n\n"
        ).encode()
        + original
        + b"\n--F--\n"
    )


def process(sent: Sent, tmp_path: Path, *messages: bytes, when=NOW, **options):
    box = mailbox.Maildir(tmp_path / "returned", create=True)
    for key in box.iterkeys():
        box.remove(key)
    for raw in messages:
        box.add(raw)
    return pipeline.process_bounces(sent.ctx, tmp_path / "returned", when, **options)


def test_a_bounce_acts_through_its_verp_token(mailing, tmp_path):
    sent = mailing(verp=True)
    reader = "reader@corp.example.org"
    token = sent.envelope[reader].split("@")[0].removeprefix("bounces+")
    assert bounces.read_verp(SECRET_BYTES, token)[2] == "daily"
    assert bounces.read_verp(SECRET_BYTES, token[:-2] + "aa") is None
    # Returned to the VERP address, naming an old alias of the reader's, quoting the sender.
    says = f"User unknown (sent by <{sent.envelope[reader]}>)"
    raw = f"Delivered-To: {sent.envelope[reader]}\n".encode() + dsn(
        ["old-alias@corp.example.org"], says=says
    )
    summary = process(sent, tmp_path, raw)
    assert summary.suppressed == 1 and sent.status(reader) == "bounced"
    assert summary.details[0]["recipients"][0]["why"] == "VERP token"
    assert token not in json.dumps(summary.as_dict())  # a token is never printed
    assert "bounces+***@news.example.com" in summary.details[0]["recipients"][0]["diagnostic"]


def test_a_bounce_without_its_token_acts_through_the_message_id_digest_sent(mailing, tmp_path):
    sent = mailing(verp=True)
    reader = "ada.lovelace@campus.example.edu"
    summary = process(sent, tmp_path, dsn([reader], returned=sent.raw[reader]))
    assert summary.suppressed == 1 and sent.status(reader) == "bounced"
    assert summary.details[0]["recipients"][0]["why"] == "Message-ID of a delivery to it"
    # That Message-ID proves a delivery to this reader only, not to another one it names.
    other = "keeps@example.com"
    summary = process(sent, tmp_path, dsn([other], returned=sent.raw["user@aol.com"]))
    assert summary.unmatched == 1 and sent.status(other) == "active"


def test_a_forged_dsn_changes_nothing(mailing, tmp_path):
    sent = mailing(verp=True)
    reader = "keeps@example.com"
    forged_token = "bounces+" + "a" * 52 + "@news.example.com"
    summary = process(
        sent,
        tmp_path,
        dsn([reader]),  # no token, a Message-ID digest never sent
        f"Delivered-To: {forged_token}\n".encode() + dsn([reader]),
    )
    assert summary.suppressed == 0 and summary.soft_counted == 0 and summary.unmatched == 2
    assert sent.status(reader) == "active" and sent.ctx.store.suppression(reader) is None
    whys = {d["recipients"][0]["why"] for d in summary.details}
    assert whys == {
        "no valid VERP token and no Message-ID digest sent to it",
        "the VERP token is not one digest made",
    }


def test_a_forged_complaint_changes_nothing_and_a_genuine_one_suppresses(mailing, tmp_path):
    sent = mailing(verp=True)
    summary = process(sent, tmp_path, arf("keeps@example.com"))
    assert summary.unmatched == 1 and sent.status("keeps@example.com") == "active"
    reader = "user@aol.com"
    summary = process(sent, tmp_path, arf(reader, returned=sent.raw[reader]))
    assert summary.suppressed == 1 and sent.status(reader) == "complained"
    assert sent.ctx.store.suppression(reader) == "complaint"
    # A feedback loop that redacts the recipient: the Message-ID names the delivery.
    reader = "reader@corp.example.org"
    summary = process(sent, tmp_path, arf("redacted@aol.example", returned=sent.raw[reader]))
    assert summary.suppressed == 1 and sent.status(reader) == "complained"


def test_a_report_naming_many_recipients_suppresses_nobody(mailing, tmp_path):
    sent = mailing(verp=False)  # every one of them was mailed today
    named = [e for e in PEOPLE if e.startswith("reader")]
    summary = process(sent, tmp_path, dsn(named))
    assert len(named) > pipeline.MANY_RECIPIENTS
    assert summary.suppressed == 0 and summary.unmatched == len(named)
    assert summary.details[0]["flags"] == ["many-recipients"] and summary.flagged == 1
    assert all(sent.status(e) == "active" for e in named)


def test_without_verp_a_report_acts_only_on_an_address_mailed_lately(mailing, tmp_path):
    sent = mailing(verp=False, mailed=["reader@corp.example.org", "user@aol.com"])
    later = process(sent, tmp_path, dsn(["reader@corp.example.org"]), when=NOW + timedelta(days=31))
    assert later.unmatched == 1 and sent.status("reader@corp.example.org") == "active"
    assert later.details[0]["recipients"][0]["why"] == "no delivery to it in the last 30 days"
    summary = process(sent, tmp_path, dsn(["reader@corp.example.org"]), dsn(["keeps@example.com"]))
    assert summary.suppressed == 1 and summary.unmatched == 1
    assert sent.status("reader@corp.example.org") == "bounced"
    assert sent.status("keeps@example.com") == "active"  # subscribed, never mailed


def test_a_bounce_naming_the_list_address_in_the_returned_to_line_leaves_it_alone(
    mailing, tmp_path
):
    sent = mailing(verp=False)
    raw = (BOUNCES / "own/exchange-list-in-to.eml").read_bytes()
    raw = raw.replace(b"LIST_ADDRESS", b"digest@news.example.com")
    raw = raw.replace(b"READER_ADDRESS", b"reader@corp.example.org")
    summary = process(sent, tmp_path, raw)
    assert summary.suppressed == 1
    assert sent.status("reader@corp.example.org") == "bounced"
    assert sent.status("digest@news.example.com") == "active"


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(mailing, tmp_path):
    sent = mailing(verp=False)
    raw = dsn(["reader@corp.example.org"])
    dry = process(sent, tmp_path, raw, dry_run=True)
    assert dry.dry_run and dry.suppressed == 1
    assert dry.details[0]["recipients"][0]["action"] == "suppressed"
    assert sent.status("reader@corp.example.org") == "active"
    real = process(sent, tmp_path, raw)
    assert real.suppressed == 1 and sent.status("reader@corp.example.org") == "bounced"
    again = process(sent, tmp_path, raw, dry_run=True)
    assert again.already_seen == 1 and again.suppressed == 0


def test_an_unreadable_file_is_reported_by_name_and_the_rest_go_on(mailing, tmp_path):
    sent = mailing(verp=False)
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "a-garbage.eml").write_bytes(b"\x00\x01 not mail at all")
    (folder / "b-bounce.eml").write_bytes(dsn(["reader@corp.example.org"]))
    summary = pipeline.process_bounces(sent.ctx, folder, NOW)
    assert summary.messages == 2 and summary.unreadable == 1 and summary.suppressed == 1
    assert summary.details[0]["source"].endswith("a-garbage.eml")
    assert (
        summary.details[0]["error"] == "cannot be read as mail: no mail headers: not a mail message"
    )
    assert json.dumps(summary.as_dict())  # the --json output


def test_processing_a_maildir_twice_acts_once(mailing, tmp_path):
    sent = mailing(verp=False)
    messages = [
        dsn(["reader@corp.example.org"]),
        dsn(["user@aol.com"], status="5.2.2", says="Mailbox full"),
        arf("keeps@example.com"),
        (BOUNCES / "sisimai/lhost-exim-38.eml").read_bytes(),
        (BOUNCES / "sisimai/rfc3834-01.eml").read_bytes(),
    ]
    first = process(sent, tmp_path, *messages)
    assert first.messages == 5 and first.suppressed == 2 and first.soft_counted == 1
    assert sent.status("reader@corp.example.org") == "bounced"
    assert sent.ctx.store.suppression("reader@corp.example.org") == "hard-bounce"
    assert sent.status("keeps@example.com") == "complained"
    assert sent.status("user@aol.com") == "active"  # one soft bounce is not enough
    again = process(sent, tmp_path, *messages)
    assert again.already_seen == 3 and again.suppressed == 0 and again.soft_counted == 0
    assert sent.ctx.store.record("user@aol.com").soft_bounces == pytest.approx(1.0)


def test_soft_bounces_decay_and_add_up(mailing):
    store = mailing(verp=False, mailed=[]).ctx.store
    sid = store.subscriber_id_for("user@aol.com")
    assert store.add_soft_bounce(sid, NOW, 7) == pytest.approx(1.0)
    assert store.add_soft_bounce(sid, NOW + timedelta(days=7), 7) == pytest.approx(1.5)
    assert store.add_soft_bounce(sid, NOW + timedelta(days=70), 7) == pytest.approx(
        1.0 + 1.5 / 512
    )  # 63 days: nine half-lives


def test_soft_bounces_in_a_row_end_in_suppression(mailing, tmp_path):
    sent = mailing(verp=False)
    raw = (BOUNCES / "flanker/mailbox-full.eml").read_bytes()
    box = mailbox.mbox(tmp_path / "bounces.mbox", create=True)
    for n in range(3):  # three distinct reports of the same failure
        box.add(f"X-Report: {n}\n".encode() + raw)
    box.flush()
    summary = pipeline.process_bounces(sent.ctx, tmp_path / "bounces.mbox", NOW)
    assert summary.messages == 3 and summary.soft_counted == 3
    assert sent.status("user@aol.com") == "bounced"
    assert sent.ctx.store.suppression("user@aol.com") == "soft-bounces"


def test_mail_to_the_list_unsubscribe_address_unsubscribes(mailing, tmp_path):
    sent = mailing(verp=False, mailed=[])
    sid = sent.ctx.store.subscriber_id_for("keeps@example.com")
    token = make_token(SECRET_BYTES, sid, "daily", "unsubscribe")
    (tmp_path / "unsub.eml").write_bytes(
        b"From: keeps@example.com\nTo: unsubscribe@orbital-dispatch.example\n"
        b"Subject: unsubscribe " + token.encode() + b"\n\n\n"
    )
    (tmp_path / "forged.eml").write_bytes(
        b"From: x@example.com\nTo: unsubscribe@orbital-dispatch.example\n"
        b"Subject: unsubscribe " + token[:-3].encode() + b"AAA\n\n\n"
    )
    summary = pipeline.process_bounces(sent.ctx, tmp_path, NOW)
    assert summary.unsubscribed == 1 and summary.unmatched == 1
    record = sent.ctx.store.record("keeps@example.com")
    assert record.membership("daily").state == "unsubscribed"
    assert record.status is SubscriberStatus.unsubscribed
