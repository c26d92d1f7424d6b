"""DKIM signing checked by an independent verifier (dkimpy), the token bucket and the run
lock's own rules."""

from __future__ import annotations

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.errors import ConfigError
from digest.send import DkimSigner, RunLocked, TokenBucket, run_lock
from digest.send.dkim import canonical_body, canonical_header
from digest.send.lock import lock_holder

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
