"""Bounce and complaint processing on real returned mail (tests/data/bounces, see SOURCES.md):
classification, a Maildir and an mbox, VERP, mailed unsubscribes, soft-bounce decay."""

from __future__ import annotations

import mailbox
from datetime import timedelta
from pathlib import Path

import pytest

from digest import pipeline
from digest.audience import bounces
from digest.audience.tokens import make_token
from digest.config import load_settings
from digest.models import NewSubscriber, SubscriberStatus
from tests.support.values import DATA, NOW, ROOT, SECRET, SECRET_BYTES

BOUNCES = DATA / "bounces"


def kinds(name: str) -> list[tuple[str, str | None]]:
    return [(r.kind, r.recipient) for r in bounces.classify((BOUNCES / name).read_bytes())]


@pytest.mark.parametrize(
    "name,kind,recipient",
    [
        ("sisimai/lhost-postfix-01.eml", "hard", "r@p351355.pool.example.ne.jp"),
        ("sisimai/crlf/lhost-postfix-01.eml", "hard", "r@p351355.pool.example.ne.jp"),
        ("sisimai/cr-only/lhost-postfix-01.eml", "hard", "r@p351355.pool.example.ne.jp"),
        ("sisimai/lhost-gmail-01.eml", "hard", "userunknown@example.jp"),
        ("sisimai/lhost-qmail-01.eml", "hard", "kijitora@example.ne.jp"),
        ("sisimai/lhost-exchange2007-01.eml", "hard", "mikeneko@example.co.jp"),
        ("sisimai/lhost-exim-52.eml", "hard", "kijitora@example.com"),
        ("sisimai/rfc3464-01.eml", "hard", "userunknown@bouncehammer.jp"),
        (
            "flanker/zed.eml",
            "hard",
            "asdfasdfasdfasdfasdfasdfewrqertrtyrthsfgdfgadfqeadvxzvz@gmail.com",
        ),
        ("flanker/office365.eml", "hard", "noname@example.com"),
        ("flanker/mailbox-full.eml", "soft", "user@aol.com"),
        ("sisimai/lhost-gmx-01.eml", "soft", "shironeko@example.jp"),
        ("sisimai/lhost-postfix-05.eml", "soft", "kijitora@example.org"),
        ("sisimai/lhost-barracuda-01.eml", "soft", "kijitora@example.org"),
        ("sisimai/arf-01.eml", "complaint", "redacted@example.net"),
        ("flanker/complaints/aol.eml", "complaint", "redacted@aol.com"),
        ("flanker/complaints/yahoo.eml", "complaint", "user@yahoo.com"),
        ("sisimai/lhost-exim-38.eml", "delay", "kijitora@example.co.jp"),
        ("sisimai/lhost-gmail-06.eml", "delay", "kijitora@example.jp"),
        (
            "sisimai/lhost-sendmail-29.eml",
            "delay",
            "this-local-part-does-not-exist-on-the-system@y-mobile.ne.jp",
        ),
        ("flanker/no-mx.eml", "delay", "user@example.com"),
        ("sisimai/rfc3834-01.eml", "auto-reply", None),
    ],
)
def test_classification(name, kind, recipient):
    assert kinds(name) == [(kind, recipient)]


def test_nothing_that_is_not_a_failure_counts_as_one():
    harmless = [
        "sisimai/rfc3834-01.eml",
        "sisimai/lhost-exim-38.eml",
        "sisimai/lhost-gmail-06.eml",
        "sisimai/lhost-sendmail-29.eml",
        "flanker/no-mx.eml",
        "sisimai/lhost-postfix-75.eml",
        "sisimai/lhost-sendmail-14.eml",
        *(f"sisimai/not-bounce/{p.name}" for p in (BOUNCES / "sisimai/not-bounce").glob("*.eml")),
    ]
    for name in harmless:
        assert not any(r.is_failure for r in bounces.classify((BOUNCES / name).read_bytes())), name


def test_every_corpus_bounce_is_read_without_error():
    seen = {r.kind for _, raw in bounces.read_mailbox(DATA) for r in bounces.classify(raw)}
    assert {"hard", "soft", "complaint", "delay", "auto-reply", "other"} <= seen


@pytest.fixture
def ctx(tmp_path, db_url):
    settings = load_settings(
        config=ROOT / "digest.toml",
        secret_key=SECRET,
        database_url=db_url,
        bounce_address="bounces@orbital-dispatch.example",
        soft_bounce_limit=3,
        soft_bounce_half_life_days=7,
    )
    context = pipeline.Context.open(settings)
    people = [
        "r@p351355.pool.example.ne.jp",
        "user@aol.com",
        "redacted@aol.com",
        "kijitora@example.co.jp",
        "keeps@example.com",
    ]
    context.store.add_subscribers([NewSubscriber(email=e, lists=("daily",)) for e in people], NOW)
    yield context
    context.close()


def maildir(path: Path, names: list[str]) -> Path:
    box = mailbox.Maildir(path, create=True)
    for name in names:
        box.add((BOUNCES / name).read_bytes())
    return path


def status(ctx, email: str) -> str:
    return ctx.store.record(email).status.value


def test_processing_a_maildir_twice_acts_once(ctx, tmp_path):
    box = maildir(
        tmp_path / "Maildir",
        [
            "sisimai/lhost-postfix-01.eml",
            "flanker/mailbox-full.eml",
            "flanker/complaints/aol.eml",
            "sisimai/lhost-exim-38.eml",
            "sisimai/rfc3834-01.eml",
        ],
    )
    first = pipeline.process_bounces(ctx, box, NOW)
    assert first.messages == 5 and first.suppressed == 2 and first.soft_counted == 1
    assert status(ctx, "r@p351355.pool.example.ne.jp") == "bounced"
    assert ctx.store.suppression("r@p351355.pool.example.ne.jp") == "hard-bounce"
    assert status(ctx, "redacted@aol.com") == "complained"
    assert ctx.store.suppression("redacted@aol.com") == "complaint"
    assert status(ctx, "user@aol.com") == "active"  # one soft bounce is not enough
    assert status(ctx, "kijitora@example.co.jp") == "active"  # a delay warning
    assert {r.email for r in ctx.store.recipients("daily")} == {
        "user@aol.com",
        "kijitora@example.co.jp",
        "keeps@example.com",
    }
    again = pipeline.process_bounces(ctx, box, NOW)
    assert again.already_seen == 3 and again.suppressed == 0 and again.soft_counted == 0
    assert ctx.store.record("user@aol.com").soft_bounces == pytest.approx(1.0)


def test_soft_bounces_decay_and_add_up(ctx):
    sid = ctx.store.subscriber_id_for("user@aol.com")
    assert ctx.store.add_soft_bounce(sid, NOW, 7) == pytest.approx(1.0)
    assert ctx.store.add_soft_bounce(sid, NOW + timedelta(days=7), 7) == pytest.approx(1.5)
    assert ctx.store.add_soft_bounce(sid, NOW + timedelta(days=70), 7) == pytest.approx(
        1.0 + 1.5 / 512
    )  # 63 days: nine half-lives


def test_soft_bounces_in_a_row_end_in_suppression(ctx, tmp_path):
    raw = (BOUNCES / "flanker/mailbox-full.eml").read_bytes()
    box = mailbox.mbox(tmp_path / "bounces.mbox", create=True)
    for n in range(3):  # three distinct reports of the same failure
        box.add(f"X-Report: {n}\n".encode() + raw)
    box.flush()
    summary = pipeline.process_bounces(ctx, tmp_path / "bounces.mbox", NOW)
    assert summary.messages == 3 and summary.soft_counted == 3
    assert status(ctx, "user@aol.com") == "bounced"
    assert ctx.store.suppression("user@aol.com") == "soft-bounces"


def test_verp_maps_a_bounce_to_its_delivery(ctx, tmp_path):
    lst = ctx.newsletter.get_list("daily")
    pipeline.fetch(ctx, NOW)
    edition = pipeline.current_edition(ctx, lst, NOW, create=True)
    reader = ctx.store.recipients("daily")[-1]
    message = pipeline.Composer(ctx, edition, lst, NOW).message(reader)
    local, domain = message.envelope_from.split("@")
    assert local.startswith("bounces+") and domain == "orbital-dispatch.example"
    assert len(local) <= 64 and local == local.lower()
    token = local.removeprefix("bounces+")
    assert bounces.read_verp(SECRET_BYTES, token) == (edition.id, reader.id, "daily")
    assert bounces.read_verp(SECRET_BYTES, token[:-2] + "aa") is None
    # A real bounce, as the receiving side returns it to that VERP address: the failed
    # address inside names somebody else, the envelope names the delivery.
    raw = (
        f"Delivered-To: {message.envelope_from}\n".encode()
        + (BOUNCES / "sisimai/lhost-postfix-01.eml").read_bytes()
    )
    (tmp_path / "one.eml").write_bytes(raw)
    summary = pipeline.process_bounces(ctx, tmp_path / "one.eml", NOW)
    assert summary.suppressed == 1
    assert status(ctx, reader.email) == "bounced"
    assert status(ctx, "r@p351355.pool.example.ne.jp") == "active"


def test_mail_to_the_list_unsubscribe_address_unsubscribes(ctx, tmp_path):
    sid = ctx.store.subscriber_id_for("keeps@example.com")
    token = make_token(SECRET_BYTES, sid, "daily", "unsubscribe")
    (tmp_path / "unsub.eml").write_bytes(
        b"From: keeps@example.com\nTo: unsubscribe@orbital-dispatch.example\n"
        b"Subject: unsubscribe " + token.encode() + b"\n\n\n"
    )
    (tmp_path / "forged.eml").write_bytes(
        b"From: x@example.com\nTo: unsubscribe@orbital-dispatch.example\n"
        b"Subject: unsubscribe " + token[:-3].encode() + b"AAA\n\n\n"
    )
    summary = pipeline.process_bounces(ctx, tmp_path, NOW)
    assert summary.unsubscribed == 1 and summary.unmatched == 1
    record = ctx.store.record("keeps@example.com")
    assert record.membership("daily").state == "unsubscribed"
    assert record.status is SubscriberStatus.unsubscribed
