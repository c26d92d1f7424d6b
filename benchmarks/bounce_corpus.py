"""How much of a bounce corpus `digest bounces process` reads right: per folder, how many
messages get the right recipients and the right hard/soft/ignore outcome. Prints JSON.

    .venv/bin/python benchmarks/bounce_corpus.py [--corpus ../shared/corpus/bounces] [--misses]

The corpora carry no expected results of their own, so the expected ones are written down
below, with how each was judged:

- ``sisimai/``: the outcome is sisimai's published reason for the message (the
  ``IsExpected`` tables of sisimai's test suite, rb-sisimai ``test/public/*.rb``) mapped
  through digest's table: userunknown, hostunknown, hasmoved, notaccept -> hard (soft under a
  4.x.x status), feedback -> complaint, vacation and negative samples -> ignore, every other
  reason -> soft. Where sisimai's label contradicts the message, the message wins and the entry
  says so (``read``). The recipients were read off each message: its DSN's
  ``Final-Recipient``, else the address the report's own text says failed.
- ``flanker/``: flanker's tests assert only that these are bounces; recipients and outcome
  were read off each message.
- ``mailman/``: the recipients are those flufl.bounce's own tests expect (its
  ``test_detectors.py``); outcomes were read off each message.
- ``own/``: the samples written for digest's tests, as those tests assert them.

A message counts as right on recipients when the set of addresses found equals the expected
set (a DSN recipient matches on its Final- or Original-Recipient), and right on outcome when
every expected recipient gets the expected outcome (the message's one outcome when it names
nobody).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.audience import bounces  # noqa: E402

H, S, IGNORE, C = "hard", "soft", "ignore", "complaint"

# file -> (expected recipients, expected outcome, how the outcome was judged)
EXPECTED: dict[str, tuple[list[str], str, str]] = {
    # sisimai: sisimai's reason -> digest's outcome
    "sisimai/arf-01.eml": (["redacted@example.net"], C, "feedback"),
    "sisimai/cr-only/lhost-postfix-01.eml": (["r@p351355.pool.example.ne.jp"], S, "mailererror"),
    "sisimai/crlf/lhost-postfix-01.eml": (["r@p351355.pool.example.ne.jp"], S, "mailererror"),
    "sisimai/lhost-postfix-01.eml": (["r@p351355.pool.example.ne.jp"], S, "mailererror"),
    "sisimai/lhost-postfix-05.eml": (["kijitora@example.org"], S, "userunknown, 4.1.1"),
    "sisimai/lhost-postfix-06.eml": (["kijitora@neko.example.jp"], H, "hostunknown"),
    "sisimai/lhost-postfix-49.eml": (["kijitora-neko-nyaan@ntt.example.ne.jp"], S, "blocked"),
    "sisimai/lhost-postfix-70.eml": (["kijitora@google.example.com"], S, "authfailure"),
    "sisimai/lhost-postfix-75.eml": (
        [],
        IGNORE,
        "read: a postmaster's session transcript, the recipient was accepted "
        "(sisimai: systemerror)",
    ),
    "sisimai/lhost-amazonses-01.eml": (["shironeko@example.co.jp"], S, "securityerror"),
    "sisimai/lhost-barracuda-01.eml": (["kijitora@example.org"], S, "spamdetected"),
    "sisimai/lhost-courier-01.eml": (["kijitora@example.co.jp"], H, "userunknown"),
    "sisimai/lhost-domino-01.eml": (["kijitora@example.jp"], H, "userunknown"),
    "sisimai/lhost-dragonfly-01.eml": (["pseudo-local-part@google.example.com"], S, "authfailure"),
    "sisimai/lhost-exchange2003-01.eml": (["kijitora@example.jp"], H, "userunknown"),
    "sisimai/lhost-exchange2007-01.eml": (["mikeneko@example.co.jp"], H, "userunknown"),
    "sisimai/lhost-exchange2007-06.eml": (["transports@agglo-saumur.fr"], H, "userunknown"),
    "sisimai/lhost-exim-01.eml": (["kijitora@example.ed.jp"], S, "blocked"),
    "sisimai/lhost-exim-38.eml": (
        ["kijitora@example.co.jp"],
        IGNORE,
        "read: 'Warning: message delayed 24 hours', still retried (sisimai: requireptr)",
    ),
    "sisimai/lhost-exim-52.eml": (["kijitora@example.com"], S, "syntaxerror"),
    "sisimai/lhost-ezweb-01.eml": (
        ["this-message-rejected-by-the-domain-filter@ezweb.ne.jp"],
        S,
        "filtered",
    ),
    "sisimai/lhost-gmail-01.eml": (["userunknown@example.jp"], H, "userunknown"),
    "sisimai/lhost-gmail-06.eml": (
        ["kijitora@example.jp"],
        IGNORE,
        "read: 'Delivery Status Notification (Delay)' (sisimai: mailboxfull 4.2.2)",
    ),
    "sisimai/lhost-gmx-01.eml": (["shironeko@example.jp"], S, "mailboxfull"),
    "sisimai/lhost-googlegroups-01.eml": (["libsisimai@googlegroups.com"], S, "rejected"),
    "sisimai/lhost-mailru-01.eml": (["kijitora@example.jp"], H, "userunknown"),
    "sisimai/lhost-messagingserver-01.eml": (["kijitora@example.jp"], H, "userunknown"),
    "sisimai/lhost-mimecast-01.eml": (["sabineko@neko.ef.example.org"], H, "userunknown"),
    "sisimai/lhost-notes-01.eml": (["kijitora@u1.example.co.jp"], S, "onhold"),
    "sisimai/lhost-office365-01.eml": (["kijitora@example.com"], H, "userunknown"),
    "sisimai/lhost-office365-04.eml": (
        ["otsu-sakaba-hunter-neko-nyaaaaaaan@ezweb.ne.jp"],
        S,
        "filtered",
    ),
    "sisimai/lhost-opensmtpd-01.eml": (
        ["apdugoaidugoaidugoaeiudggadi@gmail.com"],
        H,
        "userunknown",
    ),
    "sisimai/lhost-outlook-01.eml": (["kijitora@example.jp"], S, "mailboxfull"),
    "sisimai/lhost-powermta-01.eml": (["kijitora@example.jp"], H, "userunknown"),
    "sisimai/lhost-qmail-01.eml": (["kijitora@example.ne.jp"], H, "userunknown"),
    "sisimai/lhost-qmail-10.eml": (["kijitora@neko2.example.co.jp"], S, "suspend"),
    "sisimai/lhost-sendgrid-01.eml": (["kijitora@example.jp"], H, "userunknown"),
    "sisimai/lhost-sendmail-01.eml": (["userunknown@bouncehammer.jp"], H, "userunknown"),
    "sisimai/lhost-sendmail-05.eml": (["kijitora@example.org"], S, "emailtoolarge"),
    "sisimai/lhost-sendmail-14.eml": (
        ["kijitora@example.com"],
        H,
        "userunknown (forwarded by a person: digest ignores those by design)",
    ),
    "sisimai/lhost-sendmail-29.eml": (
        ["this-local-part-does-not-exist-on-the-system@y-mobile.ne.jp"],
        IGNORE,
        "read: 'Warning: could not send message for past 4 hours' (sisimai: expired)",
    ),
    "sisimai/lhost-trendmicro-01.eml": (["kijitora@example.co.jp"], H, "userunknown"),
    "sisimai/lhost-yahoo-01.eml": (["kijitora@example.org"], H, "userunknown"),
    "sisimai/lhost-yandex-01.eml": (["kijitora@example.jp"], H, "userunknown"),
    "sisimai/lhost-zoho-01.eml": (["kijitora@example.co.jp"], H, "userunknown"),
    "sisimai/not-bounce/is-not-bounce-01.eml": ([], IGNORE, "negative sample"),
    "sisimai/not-bounce/is-not-bounce-02.eml": ([], IGNORE, "negative sample"),
    "sisimai/not-bounce/rb-issue-368-bug.eml": ([], IGNORE, "negative sample"),
    "sisimai/rfc3464-01.eml": (
        ["userunknown@bouncehammer.jp"],
        H,
        "read: '550 5.1.1 ... User Unknown' (sisimai: mailboxfull)",
    ),
    "sisimai/rfc3464-03.eml": (["kijitora@example.com"], S, "policyviolation"),
    "sisimai/rfc3834-01.eml": ([], IGNORE, "vacation"),
    "sisimai/rhost-aol-01.eml": (["kijitora@example.jp"], H, "hostunknown"),
    "sisimai/rhost-apple-01.eml": (["kijitora@example.jp"], H, "hasmoved"),
    "sisimai/rhost-google-01.eml": (["shironeko@example.ne.jp"], S, "suspend"),
    "sisimai/rhost-microsoft-01.eml": (["kijitora@example.com"], S, "blocked"),
    # flanker: read
    "flanker/broken-mime.eml": (["info@example.net"], S, "read: delivery failed 10 attempts"),
    "flanker/delayed-broken.eml": (["demo@example.com"], S, "read: Action failed, 4.2.2"),
    "flanker/delayed.eml": (["foo@example.com"], S, "read: cannot send message for 5 days"),
    "flanker/gmail-invalid-address.eml": (
        ["awfawfawfawfawfaw@someserverhere.com"],
        H,
        "read: 550 5.1.0 recipient rejected",
    ),
    "flanker/gmail-no-dns.eml": (["user@example.comm"], H, "read: DNS error, domain not found"),
    "flanker/mailbox-full.eml": (["user@aol.com"], S, "read: 5.2.2 mailbox full"),
    "flanker/no-mx.eml": (["user@example.com"], IGNORE, "read: delayed, still being retried"),
    "flanker/office365.eml": (["noname@example.com"], H, "read: 5.1.10 recipient not found"),
    "flanker/zed.eml": (
        ["asdfasdfasdfasdfasdfasdfewrqertrtyrthsfgdfgadfqeadvxzvz@gmail.com"],
        H,
        "read: 5.1.1 no such user",
    ),
    "flanker/complaints/aol.eml": (["redacted@aol.com"], C, "read: ARF"),
    "flanker/complaints/yahoo.eml": (["user@yahoo.com"], C, "read: ARF"),
    # mailman: flufl.bounce's expected recipients, outcome read
    "mailman/aol_01.eml": (["screenname@aol.com"], S, "read: not accepting mail from the list"),
    "mailman/dsn_02.eml": (["zzzzz@example.uk"], S, "read: 4.4.7 expired"),
    "mailman/dsn_04.eml": (["userx@example.ch"], S, "read: mailbox full"),
    "mailman/dsn_09.eml": (["userx@example.com"], S, "read: unable to relay"),
    "mailman/exim_01.eml": (["userx@its.example.nl"], H, "read: 5.1.1 unknown user"),
    "mailman/groupwise_01.eml": (["userx@example.EDU"], H, "read: recipient name not recognized"),
    "mailman/groupwise_02.eml": (["userx@example.com"], H, "read: recipient name not recognized"),
    "mailman/llnl_01.eml": (["user1@example.gov"], S, "read: no reason given"),
    "mailman/microsoft_01.eml": (["userx@example.COM"], H, "read: recipient name not recognized"),
    "mailman/netscape_01.eml": (["aaaaa@corel.com", "bbbbb@corel.com"], S, "read: queue expired"),
    "mailman/postfix_01.eml": (["xxxxx@local.ie"], H, "read: user unknown"),
    "mailman/postfix_02.eml": (["yyyyy@digicool.com"], H, "read: host not found"),
    "mailman/qmail_01.eml": (["userx@example.de"], S, "read: no reason given"),
    "mailman/sendmail_01.eml": (["zzzzz@shaft.coal.nl", "zzzzz@nfg.nl"], S, "read: mail loop"),
    "mailman/simple_03.eml": (["userx@example.za"], IGNORE, "read: delay warning"),
    "mailman/simple_14.eml": (["userx@example.com"], S, "read: quota violation"),
    "mailman/sina_01.eml": (["userx@sina.com", "usery@sina.com"], S, "read: no reason given"),
    "mailman/yahoo_04.eml": (["userx@example.es", "usery@example.uk"], S, "read: over quota"),
    "mailman/yahoo_10.eml": (
        ["userx@example.com", "usery@example.com", "userz@example.com"],
        H,
        "read: two user unknown, one disabled account (outcome counted on the first)",
    ),
    # own: as tests/test_bounces.py asserts
    "own/html-only.eml": (["grace.h@contoso.example.com"], H, "written"),
    "own/novell-groupwise.eml": (
        ["ada.lovelace@campus.example.edu", "c.babbage@campus.example.edu"],
        H,
        "written (outcome counted on the first; the second is mailbox full)",
    ),
    "own/x400-wrapped.eml": (["g.hopper@navy.example.net"], H, "written"),
}


def judge(name: str, raw: bytes) -> dict:
    want, outcome, basis = EXPECTED[name]
    try:
        reports = bounces.classify(raw)
    except Exception as exc:
        return {"file": name, "error": str(exc), "recipients_right": False, "outcome_right": False}
    named = {r.recipient.lower() for r in reports if r.recipient}
    matched = {
        w.lower()
        for w in want
        for r in reports
        if w.lower() in {(r.recipient or "").lower(), (r.original_recipient or "").lower()}
    }
    extra = {
        a
        for r in reports
        if r.recipient
        for a in [r.recipient.lower()]
        if a not in {w.lower() for w in want}
        and (r.original_recipient or "").lower() not in {w.lower() for w in want}
    }
    recipients_right = matched == {w.lower() for w in want} and not extra
    first = want[0].lower() if want else None
    got = next(
        (
            r.outcome
            for r in reports
            if first is None
            or first in {(r.recipient or "").lower(), (r.original_recipient or "").lower()}
        ),
        reports[0].outcome if reports else None,
    )
    return {
        "file": name,
        "recipients_right": recipients_right,
        "outcome_right": got == outcome,
        "found": sorted(named),
        "expected": want,
        "outcome": got,
        "expected_outcome": outcome,
        "basis": basis,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--corpus",
        type=Path,
        default=ROOT.parent.parent / "shared" / "corpus" / "bounces"
        if (ROOT.parent.parent / "shared" / "corpus" / "bounces").is_dir()
        else ROOT / "tests" / "data" / "bounces",
    )
    parser.add_argument("--misses", action="store_true", help="List every message judged wrong.")
    args = parser.parse_args()
    folders: dict[str, dict] = {}
    misses = []
    for path in sorted(p for p in args.corpus.rglob("*.eml")):
        name = path.relative_to(args.corpus).as_posix()
        if name not in EXPECTED:
            continue
        result = judge(name, path.read_bytes())
        folder = folders.setdefault(
            name.split("/")[0], {"messages": 0, "right_recipients": 0, "right_outcome": 0}
        )
        folder["messages"] += 1
        folder["right_recipients"] += result["recipients_right"]
        folder["right_outcome"] += result["outcome_right"]
        if not (result["recipients_right"] and result["outcome_right"]):
            misses.append(result)
    out: dict = {"corpus": str(args.corpus), "folders": folders}
    if args.misses:
        out["misses"] = misses
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
