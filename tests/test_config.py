"""Settings and the newsletter definition: defaults, environment, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digest.config import load_newsletter, load_settings, parse_smtp_url
from digest.errors import ConfigError
from tests.support.values import ROOT


def test_defaults_run_on_embedded_store_and_outbox():
    settings = load_settings()
    assert settings.database_url == "sqlite:///subscribers/digest.db"
    assert settings.relay is None
    assert settings.outbox == Path("outbox")
    assert settings.secret_key is None


def test_environment_overrides_and_dotenv(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text(
        "DIGEST_BASE_URL=https://from-dotenv.example\nDIGEST_SMTP_CONNECTIONS=2\n"
    )
    monkeypatch.setenv("DIGEST_SMTP_CONNECTIONS", "7")
    settings = load_settings()
    assert settings.base_url == "https://from-dotenv.example"
    assert settings.smtp_connections == 7


def test_missing_secret_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"DIGEST_SECRET_KEY is not set.*digest init"):
        load_settings().require_secret()


@pytest.mark.parametrize(
    "name,value,expected",
    [
        ("DIGEST_DATABASE_URL", "mysql://x", "DIGEST_DATABASE_URL must start with sqlite"),
        ("DIGEST_SMTP_URL", "http://mail.example.com", "DIGEST_SMTP_URL scheme 'http'"),
        ("DIGEST_SMTP_URL", "smtp://", "DIGEST_SMTP_URL has no host"),
        ("DIGEST_BASE_URL", "news.example.com", "DIGEST_BASE_URL must be an absolute"),
        ("DIGEST_SECRET_KEY", "short", "DIGEST_SECRET_KEY is too short"),
        ("DIGEST_SMTP_CONNECTIONS", "0", "DIGEST_SMTP_CONNECTIONS"),
    ],
)
def test_invalid_setting_names_itself_in_one_line(monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_smtp_url_password_never_in_error_or_repr(monkeypatch):
    monkeypatch.setenv("DIGEST_SMTP_URL", "smtps://user:hunter2secret@mail.example.com:465")
    settings = load_settings()
    assert "hunter2secret" not in repr(settings)
    relay = settings.relay
    assert (relay.host, relay.port, relay.tls, relay.username) == (
        "mail.example.com",
        465,
        "implicit",
        "user",
    )
    assert "hunter2secret" not in repr(relay) and "hunter2secret" not in relay.display
    assert relay.password.get_secret_value() == "hunter2secret"


def test_smtp_schemes():
    assert parse_smtp_url("smtp://mail.example.com").tls == "starttls"
    assert parse_smtp_url("smtp://mail.example.com").port == 587
    assert parse_smtp_url("smtp://127.0.0.1:2525").tls == "none"
    assert parse_smtp_url("smtp+plain://relay.internal:25").tls == "none"
    assert parse_smtp_url("smtp://u%40x:p%3Aw@h:25").username == "u@x"


def test_sample_definition_loads(newsletter):
    assert newsletter.get_list(None).name == "daily"
    assert [s.slug for s in newsletter.sections][:2] == ["internet-space", "military-space"]
    for section in newsletter.sections:
        for feed in section.feeds:
            assert Path(feed).is_absolute() and Path(feed).exists(), feed


def _definition(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "news.toml"
    path.write_text(text)
    return path


SAMPLE_TOML = (ROOT / "digest.toml").read_text()


@pytest.mark.parametrize(
    "change,expected",
    [
        (('timezone = "America/New_York"', 'timezone = "Mars/Olympus"'), "lists.0.timezone"),
        (('subject = "{title}, {date}: {headline}"', 'subject = "{title} {oops}"'), "{oops}"),
        (('slug = "launch-pad"', 'slug = "Launch Pad"'), "sections.4.slug"),
        (('title = "Orbital Dispatch Daily"', 'title = "Orbital\\r\\nBcc: x@y"'), "one line"),
        (
            (
                'sender = "Orbital Dispatch <newsletter@orbital-dispatch.example>"',
                'sender = "nobody"',
            ),
            "lists.0.sender",
        ),
    ],
)
def test_invalid_definition_names_the_field(tmp_path, change, expected):
    old, new = change
    assert old in SAMPLE_TOML
    path = _definition(tmp_path, SAMPLE_TOML.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_newsletter(path)
    assert expected in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "sender",
    [
        "a@evil.example <news@x>",  # an address in front of the mailbox: two readings
        "a@evil.example <news@orbital-dispatch.example>",
        '"a@evil.example" <news@orbital-dispatch.example>',  # quoted, still read as the sender
        "news@orbital-dispatch.example, boss@orbital-dispatch.example",  # two addresses
        "Editors: news@orbital-dispatch.example;",  # a group
        "News <news@orbital-dispatch.example> trailing",
        "News <news@orbital-dispatch.example>\r\nBcc: victim@example.com",  # CR/LF
        "News <news>",  # no domain
    ],
)
def test_the_sender_must_be_exactly_one_mailbox(tmp_path, sender):
    old = 'sender = "Orbital Dispatch <newsletter@orbital-dispatch.example>"'
    path = _definition(tmp_path, SAMPLE_TOML.replace(old, f"sender = {json.dumps(sender)}", 1))
    with pytest.raises(ConfigError) as info:
        load_newsletter(path)
    message = str(info.value)
    assert message.startswith(f"{path}: lists.0.sender: ") and "\n" not in message


def test_a_sender_with_a_quoted_display_name_is_one_mailbox(tmp_path):
    old = 'sender = "Orbital Dispatch <newsletter@orbital-dispatch.example>"'
    quoted = '"Dispatch, Daily" <newsletter@orbital-dispatch.example>'
    new = f"sender = {json.dumps(quoted)}"
    lst = load_newsletter(_definition(tmp_path, SAMPLE_TOML.replace(old, new, 1))).get_list(None)
    assert lst.sender_address == "newsletter@orbital-dispatch.example"


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_newsletter(_definition(tmp_path, "name = [unclosed"))
    with pytest.raises(ConfigError, match="not found"):
        load_newsletter(tmp_path / "absent.toml")


def test_several_lists_need_a_name(tmp_path):
    text = SAMPLE_TOML + SAMPLE_TOML[
        SAMPLE_TOML.index("[[lists]]") : SAMPLE_TOML.index("[[sections]]")
    ].replace('name = "daily"', 'name = "weekly"')
    newsletter = load_newsletter(_definition(tmp_path, text))
    with pytest.raises(ConfigError, match=r"several lists.*daily, weekly"):
        newsletter.get_list(None)
    assert newsletter.get_list("weekly").name == "weekly"
