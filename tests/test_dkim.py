"""DKIM signing checked by an independent verifier (dkimpy), the token bucket and the run
lock's own rules."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
import re
import signal

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dkim.canonicalization import Relaxed

from digest.compose import Recipient, make_environment, personalize, prepare
from digest.errors import ConfigError
from digest.models import MessagePieces
from digest.send import DkimSigner, RunLocked, TokenBucket, run_lock
from digest.send.dkim import BodyPlan, canonical_body, canonical_header
from digest.send.lock import lock_holder
from digest.send.signing import SigningPool
from tests.support.editions import BASE, make_edition, render_edition
from tests.support.values import NOW, SECRET_BYTES

RAW = (
    b"From: Daily <news@example.com>\r\nTo: reader@example.org\r\n"
    b"Subject:  A   subject\r\n\tfolded\r\nDate: Thu, 26 Nov 2026 06:00:00 +0000\r\n"
    b"Message-ID: <1.2@example.com>\r\nList-Id: Daily <daily.example.com>\r\n"
    b"List-Unsubscribe: <https://example.com/u/t>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"Feedback-ID: 2026-11-26:daily:digest:example.com\r\n"
    b"MIME-Version: 1.0\r\n\r\nHello  there \t\r\nbye\r\n\r\n\r\n"
)


def pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize(
    "key",
    [
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ed25519.Ed25519PrivateKey.generate(),
    ],
    ids=["rsa", "ed25519"],
)
def test_signatures_verify_with_dkimpy_and_cover_the_list_headers(key):
    signer = DkimSigner(pem(key), domain="example.com", selector="s1")
    record = signer.dns_record().encode()
    signed = signer.sign(RAW)

    assert signed.endswith(RAW)  # the message itself is left byte for byte
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: record)
    assert (
        b"h=from:to:subject:date:message-id:list-id:list-unsubscribe:"
        b"list-unsubscribe-post:feedback-id;" in signed.replace(b"\r\n\t", b"")
    )
    for line in signed.split(b"\r\n\r\n")[0].split(b"\r\n"):
        assert len(line) <= 998
    # Changing a signed header, or the body, breaks it.
    assert not dkim.verify(
        signed.replace(b"One-Click", b"Two-Click"), dnsfunc=lambda name, timeout=5: record
    )
    assert not dkim.verify(signed.replace(b"bye", b"bye!"), dnsfunc=lambda name, timeout=5: record)


def test_relaxed_canonicalization():
    assert canonical_body(b"a  b \t\r\nc\r\n\r\n\r\n") == b"a b\r\nc\r\n"
    assert canonical_body(b"") == b"" and canonical_body(b"\r\n\r\n") == b""
    assert canonical_body(b"no newline") == b"no newline\r\n"
    assert canonical_header(b"SUBJECT ", b"  A \r\n\t b  ") == b"subject:A b\r\n"


@pytest.mark.parametrize(
    "value",
    [
        b" plain, one line",  # nothing to unfold or squeeze
        b" trailing space ",
        b"no leading space",
        b" two  spaces",
        b" a\ttab",
        b" folded\r\n\tonce",
        b" folded\r\n  with  runs \r\n\t",
        b"",
    ],
)
def test_a_relaxed_header_is_the_one_dkimpy_computes(value):
    from dkim.canonicalization import Relaxed

    [(name, expected)] = Relaxed.canonicalize_headers([(b"X-Head", value + b"\r\n")])
    assert canonical_header(b"X-Head", value) == name + b":" + expected


def test_the_relaxed_body_is_the_one_dkimpy_computes_lone_carriage_returns_included():
    # Only CRLF pairs end lines: a CR before the last CRLF is part of the last line.
    for body in (b"a\r\r\n\r\n", b"a\r\n\r", b"\r\r\n", b"a \r \r\n", b"\n\r\n", b"a\n\n"):
        assert canonical_body(body) == Relaxed.canonicalize_body(body), body


# -- signing by constant pieces -----------------------------------------------------------------

KEYS = {
    "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ed25519": ed25519.Ed25519PrivateKey.generate(),
}
TIMESTAMP = 1795500000


def dkimpy_body_hash(raw: bytes, kind: str) -> bytes:
    """The bh= dkimpy's own signing puts on ``raw`` with the same key and canonicalization."""
    key = KEYS[kind]
    if kind == "rsa":
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    else:
        private = base64.b64encode(
            key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        )
    header = dkim.sign(
        raw,
        b"s1",
        b"example.com",
        private,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=[b"from", b"to"],
        signature_algorithm=f"{kind}-sha256".encode(),
    )
    match = re.search(rb"bh=([^;]+);", header.replace(b"\r\n ", b""))
    assert match is not None
    return match.group(1)


def body_hash_of(signed: bytes) -> bytes:
    match = re.search(rb"bh=([^;]+);", signed.replace(b"\r\n\t", b""))
    assert match is not None
    return match.group(1)


def refuse_whole_bodies(monkeypatch) -> None:
    """Make the ordinary path (canonicalizing the whole body) fail: what is signed after
    this was signed by pieces."""

    def whole(body: bytes) -> bytes:
        raise AssertionError("the whole body was canonicalized")

    monkeypatch.setattr("digest.send.dkim.canonical_body", whole)


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_a_personalized_message_signed_by_its_constant_pieces_matches_dkimpy_byte_for_byte(
    newsletter, monkeypatch, kind
):
    lst = newsletter.get_list("daily")
    edition = make_edition(newsletter)
    rendered = render_edition(edition, newsletter, lst, make_environment())
    template = prepare(rendered, edition, newsletter=newsletter, lst=lst, base_url=BASE, date=NOW)
    readers = [
        Recipient(3, "reader@example.org", "Reader"),
        Recipient(4_000_000_000, "a." + "very-long-local-part" * 3 + "@example.org", "Zoë"),
        Recipient(5, "x@y.example", ""),
    ]
    messages = [personalize(template, r, secret=SECRET_BYTES) for r in readers]
    assert all(m.pieces is not None for m in messages)
    signer = DkimSigner(pem(KEYS[kind]), domain="example.com", selector="s1")
    record = signer.dns_record().encode()

    with monkeypatch.context() as patched:
        refuse_whole_bodies(patched)
        by_pieces = [signer.sign(m.raw, timestamp=TIMESTAMP, pieces=m.pieces) for m in messages]
    for message, signed in zip(messages, by_pieces, strict=True):
        assert signed == signer.sign(message.raw, timestamp=TIMESTAMP)
        assert body_hash_of(signed) == dkimpy_body_hash(message.raw, kind)
        assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: record)


def layout_message(constants: list[bytes], values: list[bytes]) -> tuple[bytes, MessagePieces]:
    """A message whose body is ``constants`` with ``values`` between them, as
    ``personalize`` describes one (the header block ends in the first constant)."""
    head = b"From: a@example.com\r\nTo: b@example.org\r\n"
    layout: list[object] = [b"Subject: s\r\n\r\n" + constants[0]]
    for index, constant in enumerate(constants[1:]):
        layout += [("gap", index), constant]
    raw = head + layout[0] + b"".join(v + c for v, c in zip(values, constants[1:], strict=True))
    return raw, MessagePieces(len(head), tuple(layout), tuple(values))


# (constants, values): every value at a line's start, its end, its middle, alone on its
# line, spanning lines, next to whitespace on either side, empty, or next to another value.
LAYOUTS = [
    ([b"a\r\n", b"\r\nb\r\n"], [b"start of a line"]),
    ([b"line end: ", b"\r\nnext\r\n"], [b"value"]),
    ([b"in the mid", b"dle of a line\r\nz\r\n"], [b"VALUE"]),
    ([b"x\r\n", b"\r\ny\r\n"], [b"alone"]),
    ([b"soft=\r\n", b"\r\nend\r\n"], [b"https://example.com/u/a-long=\r\n-token"]),
    ([b"spaces  \t", b"  after\r\nq\r\n"], [b" \t "]),
    ([b"trailing ", b"\r\nq\r\n"], [b"  \t"]),
    ([b"\t lead", b"\r\n  indented  \r\n\r\n\r\n"], [b""]),
    ([b"two ", b"", b" values\r\nend\r\n\r\n"], [b"one", b"two"]),
    ([b"", b"\r\n", b"x \r\n  \r\nend\r\n"], [b"first", b"then\r\nlines\r\n"]),
    ([b"=\r\n", b"=\r\n", b"=\r\n--b--\r\n"], [b"v1", b"v2"]),
]


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
@pytest.mark.parametrize("constants,values", LAYOUTS)
def test_personal_pieces_on_a_line_boundary_or_not_sign_as_the_whole_body(
    monkeypatch, kind, constants, values
):
    raw, pieces = layout_message(constants, values)
    signer = DkimSigner(pem(KEYS[kind]), domain="example.com", selector="s1")
    with monkeypatch.context() as patched:
        refuse_whole_bodies(patched)
        by_pieces = signer.sign(raw, timestamp=TIMESTAMP, pieces=pieces)
    assert by_pieces == signer.sign(raw, timestamp=TIMESTAMP)
    assert body_hash_of(by_pieces) == dkimpy_body_hash(raw, kind)
    record = signer.dns_record().encode()
    assert dkim.verify(by_pieces, dnsfunc=lambda name, timeout=5: record)


def test_the_body_plan_hashes_any_split_as_dkimpy_canonicalizes_the_joined_body():
    # Random bodies cut anywhere, lone CRs and LFs included; where the plan declines (a line
    # end split between pieces, a body ending after its last value), the signer hashes the
    # whole body, and either way the signature is the same.
    rng = random.Random(18)
    tokens = [b"a", b"b", b" ", b"  ", b"\t", b"\r\n", b"\r\n", b"=", b"\r", b"\n"]
    signer = DkimSigner(pem(KEYS["ed25519"]), domain="example.com", selector="s1")
    planned = 0
    for _ in range(400):
        pieces = [b"".join(rng.choices(tokens, k=rng.randint(0, 8))) for _ in range(7)]
        constants, values = pieces[0::2], pieces[1::2]
        constants[-1] += rng.choice([b"", b"\r\nend\r\n", b"\r\nend\r\n\r\n"])
        body = b"".join(c + v for c, v in zip(constants, [*values, b""], strict=True))
        expected = hashlib.sha256(Relaxed.canonicalize_body(body)).digest()
        try:
            digest = BodyPlan(constants).body_hash(tuple(values))
        except ValueError:
            digest = None
        if digest is not None:
            planned += 1
            assert digest == expected, (constants, values)
        raw, described = layout_message(constants, values)
        assert signer.sign(raw, timestamp=TIMESTAMP, pieces=described) == signer.sign(
            raw, timestamp=TIMESTAMP
        )
    assert planned > 60  # the plan is not only declining (97 of these 400)


def test_weak_or_unusable_keys_are_configuration_errors(tmp_path):
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ConfigError, match="1024 bits"):
        DkimSigner(pem(small), domain="example.com", selector="s1")
    with pytest.raises(ConfigError, match="not an unencrypted PEM"):
        DkimSigner(b"nonsense", domain="example.com", selector="s1")
    with pytest.raises(ConfigError, match="cannot read"):
        DkimSigner.from_file(tmp_path / "missing.pem", domain="example.com", selector="s1")


def test_the_token_bucket_spaces_reservations_exactly():
    now = [100.0]
    bucket = TokenBucket(rate=10, capacity=1, clock=lambda: now[0])
    waits = [bucket.reserve() for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3])
    now[0] += 1.0  # idle time refills, but never beyond the capacity
    assert bucket.reserve() == 0.0 and bucket.reserve() == pytest.approx(0.1)


def test_the_run_lock_is_exclusive_and_names_its_holder(tmp_path):
    path = tmp_path / "run" / "digest-send-daily.lock"
    with run_lock(path, "list daily"):
        assert lock_holder(path).startswith("pid ")
        with pytest.raises(RunLocked) as caught, run_lock(path, "list daily"):
            pass
        assert "list daily is being sent by another run (pid" in str(caught.value)
        assert caught.value.exit_code == 14
    assert lock_holder(path) is None
    with run_lock(path, "list daily"):
        pass


# -- RSA signatures in a worker process ---------------------------------------------------------


def template_messages(newsletter, count: int):
    lst = newsletter.get_list("daily")
    edition = make_edition(newsletter)
    rendered = render_edition(edition, newsletter, lst, make_environment())
    template = prepare(rendered, edition, newsletter=newsletter, lst=lst, base_url=BASE, date=NOW)
    return [
        personalize(template, Recipient(i, f"reader{i}@example.org", "Reader"), secret=SECRET_BYTES)
        for i in range(1, count + 1)
    ]


def test_rsa_signatures_made_in_a_worker_process_are_those_made_in_place(newsletter):
    signer = DkimSigner(pem(KEYS["rsa"]), domain="example.com", selector="s1")
    record = signer.dns_record().encode()
    messages = template_messages(newsletter, 12)
    pool = SigningPool(signer)
    assert pool.in_process

    async def sign_all():
        # Concurrently, as the sending sessions do: requests of one turn go together.
        return await asyncio.gather(*(pool.sign_message(m, timestamp=TIMESTAMP) for m in messages))

    try:
        signed = asyncio.run(sign_all())
        assert pool.in_process  # the worker process made them, none fell back
    finally:
        pool.close()
    for message, by_pool in zip(messages, signed, strict=True):
        assert by_pool == signer.sign_message(message, timestamp=TIMESTAMP)
        assert dkim.verify(by_pool.raw, dnsfunc=lambda name, timeout=5: record)


def test_a_signing_process_that_dies_leaves_the_signing_in_place(newsletter):
    signer = DkimSigner(pem(KEYS["rsa"]), domain="example.com", selector="s1")
    record = signer.dns_record().encode()
    messages = template_messages(newsletter, 3)
    pool = SigningPool(signer)

    async def run():
        first = await pool.sign_message(messages[0])
        os.kill(pool._process.pid, signal.SIGKILL)  # type: ignore[union-attr]
        return [first, *await asyncio.gather(*(pool.sign_message(m) for m in messages[1:]))]

    try:
        signed = asyncio.run(run())
    finally:
        pool.close()
    assert not pool.in_process
    for message in signed:
        assert dkim.verify(message.raw, dnsfunc=lambda name, timeout=5: record)


def test_ed25519_signatures_are_made_in_place(newsletter):
    pool = SigningPool(DkimSigner(pem(KEYS["ed25519"]), domain="example.com", selector="s1"))
    assert not pool.in_process
    message = template_messages(newsletter, 1)[0]
    signed = asyncio.run(pool.sign_message(message, timestamp=TIMESTAMP))
    assert signed == pool.signer.sign_message(message, timestamp=TIMESTAMP)
    pool.close()
