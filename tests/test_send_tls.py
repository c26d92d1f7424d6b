"""TLS to the relay: implicit TLS and STARTTLS with verified certificates, against a real
aiosmtpd server holding a certificate from a CA generated for the test."""

from __future__ import annotations

import pytest

from digest.config import load_settings
from digest.errors import ConfigError, SendError
from digest.send import SmtpTransport
from digest.send.relays import is_loopback, smtp_transports
from tests.support.sending import clock, connect, queued_edition, send
from tests.support.smtpd import make_tls, smtp_server


@pytest.fixture
def tls(tmp_path):
    return make_tls(tmp_path)


def test_starttls_with_a_verified_certificate(store, tls):
    edition_id, emails = queued_edition(store, 3)
    with smtp_server(tls_context=tls.server_context, require_starttls=True) as server:
        transport = SmtpTransport(server.relay(tls="starttls"), connections=1, ca_file=tls.ca_file)
        report = send(store, edition_id, emails, transport)
        assert report.counts == {"sent": 3}
        assert sorted(server.handler.recipients()) == sorted(emails.values())


def test_implicit_tls_with_a_verified_certificate(store, tls):
    edition_id, emails = queued_edition(store, 2)
    with smtp_server(ssl_context=tls.server_context) as server:
        transport = SmtpTransport(server.relay(tls="implicit"), connections=1, ca_file=tls.ca_file)
        report = send(store, edition_id, emails, transport)
        assert report.counts == {"sent": 2}


def test_a_certificate_from_an_unknown_authority_is_refused(tls):
    with smtp_server(tls_context=tls.server_context, require_starttls=True) as server:
        with pytest.raises(SendError) as caught:
            connect(SmtpTransport(server.relay(tls="starttls")))  # system CAs only
        assert "certificate" in str(caught.value).lower()
        assert server.handler.messages == []


def test_a_relay_without_starttls_is_refused_unless_relaxed(store):
    edition_id, emails = queued_edition(store, 1)
    with smtp_server() as server:  # offers no STARTTLS
        with pytest.raises(SendError) as caught:
            connect(SmtpTransport(server.relay(tls="starttls")))
        assert "STARTTLS" in str(caught.value)
        relaxed = SmtpTransport(server.relay(tls="starttls"), tls_relaxed=True)
        assert send(store, edition_id, emails, relaxed).counts == {"sent": 1}


def test_plain_text_off_loopback_is_a_configuration_error(monkeypatch, store):
    monkeypatch.setenv("DIGEST_SMTP_URL", "smtp+plain://relay.internal:25")
    with pytest.raises(ConfigError) as caught:
        smtp_transports(load_settings(), store, clock)
    assert "DIGEST_SMTP_TLS_RELAXED" in str(caught.value)
    monkeypatch.setenv("DIGEST_SMTP_TLS_RELAXED", "true")
    (transport,) = smtp_transports(load_settings(), store, clock)
    assert transport.label == "relay.internal:25"


def test_several_relays_from_the_environment(monkeypatch, store):
    monkeypatch.setenv("DIGEST_SMTP_URL", "smtps://u:secret@a.example.com:465")
    monkeypatch.setenv("DIGEST_SMTP_PER_SECOND", "20")
    monkeypatch.setenv(
        "DIGEST_SMTP_RELAYS", '[{"url": "smtp://b.example.com", "connections": 2, "per_second": 5}]'
    )
    first, second = smtp_transports(load_settings(), store, clock)
    assert (first.label, first.concurrency, first.limiter.limit) == ("a.example.com:465", 10, 20)
    assert (second.label, second.concurrency, second.limiter.limit) == ("b.example.com:587", 2, 5)
    assert second.relay.tls == "starttls"


def test_loopback_names():
    assert all(map(is_loopback, ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"]))
    assert not any(map(is_loopback, ["mail.example.com", "10.0.0.1", "localhost.example"]))
