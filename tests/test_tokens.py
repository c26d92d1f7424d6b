"""Signed tokens: they round-trip, and anything not made with this secret and purpose is None."""

from __future__ import annotations

import base64

import pytest

from digest.audience.tokens import MAX_SUBSCRIBER_ID, make_token, read_token
from tests.support.values import SECRET_BYTES


@pytest.mark.parametrize("subscriber_id", [0, 1, 127, 128, 300, 2**31, MAX_SUBSCRIBER_ID])
@pytest.mark.parametrize("list_name", ["daily", "a", "weekly-digest-2", "x" * 64])
def test_round_trip(subscriber_id, list_name):
    token = make_token(SECRET_BYTES, subscriber_id, list_name, "unsubscribe")
    assert read_token(SECRET_BYTES, token, "unsubscribe") == (subscriber_id, list_name)


def test_url_safe_and_short():
    token = make_token(SECRET_BYTES, 2**35 - 1, "weekly-briefs", "preferences")
    assert len(token) <= 40
    assert token.replace("-", "").replace("_", "").isalnum()
    longest = make_token(SECRET_BYTES, MAX_SUBSCRIBER_ID, "x" * 64, "unsubscribe")
    assert len(longest) <= 120


def test_tokens_differ_by_purpose_subscriber_list_and_secret():
    tokens = {
        make_token(SECRET_BYTES, 1, "daily", "unsubscribe"),
        make_token(SECRET_BYTES, 1, "daily", "preferences"),
        make_token(SECRET_BYTES, 2, "daily", "unsubscribe"),
        make_token(SECRET_BYTES, 1, "weekly", "unsubscribe"),
        make_token(b"o" * 32, 1, "daily", "unsubscribe"),
    }
    assert len(tokens) == 5


def test_wrong_purpose_is_refused():
    token = make_token(SECRET_BYTES, 42, "daily", "view")
    assert read_token(SECRET_BYTES, token, "unsubscribe") is None
    assert read_token(SECRET_BYTES, token, "preferences") is None


def test_wrong_secret_is_refused():
    token = make_token(SECRET_BYTES, 42, "daily", "unsubscribe")
    assert read_token(b"j" * 32, token, "unsubscribe") is None


def test_every_single_character_change_is_refused():
    token = make_token(SECRET_BYTES, 42, "daily", "unsubscribe")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for index, char in enumerate(token):
        for other in alphabet.replace(char, "")[::7]:
            forged = token[:index] + other + token[index + 1 :]
            assert read_token(SECRET_BYTES, forged, "unsubscribe") is None, forged


def test_payload_swapped_under_a_valid_mac_is_refused():
    raw = base64.urlsafe_b64decode(make_token(SECRET_BYTES, 42, "daily", "unsubscribe") + "==")
    other = base64.urlsafe_b64decode(make_token(SECRET_BYTES, 43, "daily", "unsubscribe") + "==")
    forged = base64.urlsafe_b64encode(other[:-12] + raw[-12:]).rstrip(b"=").decode()
    assert read_token(SECRET_BYTES, forged, "unsubscribe") is None


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "A",
        "====",
        "not a token",
        "abc\r\ndef",
        "é" * 20,
        "A" * 121,
        "ab+/cd",
        "ab=cd",
    ],
)
def test_malformed_is_none(junk):
    assert read_token(SECRET_BYTES, junk, "unsubscribe") is None


def test_truncated_or_extended_is_refused():
    token = make_token(SECRET_BYTES, 42, "daily", "unsubscribe")
    assert read_token(SECRET_BYTES, token[:-1], "unsubscribe") is None
    assert read_token(SECRET_BYTES, token + "A", "unsubscribe") is None
    assert read_token(SECRET_BYTES, token + "=", "unsubscribe") is None


@pytest.mark.parametrize(
    "args",
    [
        (-1, "daily"),
        (MAX_SUBSCRIBER_ID + 1, "daily"),
        (True, "daily"),
        (1, "Daily"),
        (1, ""),
        (1, "x" * 65),
        (1, "dai ly"),
    ],
)
def test_make_token_rejects_bad_input(args):
    with pytest.raises(ValueError):
        make_token(SECRET_BYTES, *args, "unsubscribe")


def test_empty_secret_is_an_error_not_a_weak_token():
    with pytest.raises(ValueError):
        make_token(b"", 1, "daily", "unsubscribe")
    with pytest.raises(ValueError):
        read_token(b"", "AAAA", "unsubscribe")
