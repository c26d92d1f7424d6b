"""Configuration: deployment settings and the newsletter definition.

Two sources, two kinds of facts:

- ``Settings`` (pydantic-settings): the environment and ``.env``, every name prefixed
  ``DIGEST_``. Where things are and the secrets: database, relay, secret key, public URL.
- ``Newsletter`` (the TOML file named by ``DIGEST_CONFIG``): the newsletter's shape, reviewed
  by a person: its lists (sender, subject pattern, time zone, locale, postal address) and its
  sections (slug, title, feeds, caps).

``load()`` returns both or raises ``ConfigError`` with one line naming the setting at fault.
"""

from __future__ import annotations

import email.policy
import re
import tomllib
import zoneinfo
from datetime import datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from digest import periods
from digest.errors import ConfigError

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
SUBJECT_FIELDS = {"title", "date", "headline"}
DEFAULT_MAX_AGE_HOURS = 7 * 24  # older than a week when first seen: backlog, not news
HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
DEFAULT_BRAND_COLOR, DEFAULT_ACCENT_COLOR = "#0b2545", "#0a58ca"


def _no_newlines(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("must be one line (it goes into a mail header)")
    return value


OneLine = Annotated[str, AfterValidator(_no_newlines)]


class SmtpRelay(BaseModel):
    """A relay parsed from ``DIGEST_SMTP_URL`` (smtp://, smtp+starttls://, smtps://)."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int
    username: str | None = None
    password: SecretStr | None = None
    tls: str  # "implicit", "starttls" or "none"

    @property
    def display(self) -> str:
        """The relay without its credentials, safe for logs and errors."""
        return f"{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpRelay:
    parts = urlsplit(url)
    schemes = {
        "smtp": ("starttls", 587),
        "smtp+starttls": ("starttls", 587),
        "smtps": ("implicit", 465),
        "smtp+plain": ("none", 25),
    }
    if parts.scheme not in schemes:
        raise ValueError(f"scheme {parts.scheme!r} is not one of smtp://, smtps://, smtp+plain://")
    if not parts.hostname:
        raise ValueError("has no host (e.g. smtp://user:pass@mail.example.com:587)")
    tls, default_port = schemes[parts.scheme]
    host = parts.hostname
    # Plain SMTP is fine on loopback only; anywhere else credentials and mail would be exposed.
    if parts.scheme == "smtp" and host in ("localhost", "127.0.0.1", "::1"):
        tls = "none"
    try:
        port = parts.port or default_port
    except ValueError:
        raise ValueError("has an invalid port") from None
    return SmtpRelay(
        host=host,
        port=port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=SecretStr(unquote(parts.password)) if parts.password else None,
    )


class RelaySetting(BaseModel):
    """One more relay, an item of ``DIGEST_SMTP_RELAYS`` (JSON); unset limits take the
    ``DIGEST_SMTP_*`` defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: SecretStr
    connections: int | None = Field(default=None, ge=1, le=64)
    per_second: float | None = Field(default=None, ge=0)
    per_hour: int | None = Field(default=None, ge=0)

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        parse_smtp_url(value.get_secret_value())
        return value


class Settings(BaseSettings):
    """Deployment settings, from the environment and ``.env`` (prefix ``DIGEST_``)."""

    model_config = SettingsConfigDict(
        env_prefix="DIGEST_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite:///subscribers/digest.db"
    smtp_url: SecretStr | None = None
    smtp_connections: int = Field(default=10, ge=1, le=64)
    smtp_timeout: float = Field(default=60.0, gt=0)
    # Sending (docs/sending.md): more relays, pacing, retries, TLS, DKIM, the run lock.
    smtp_relays: list[RelaySetting] = Field(default_factory=list)  # JSON list of relays
    smtp_per_second: float = Field(default=0, ge=0)  # per relay; 0: no limit
    smtp_per_hour: int = Field(default=0, ge=0)  # per relay; 0: no limit
    smtp_rotate_after: int = Field(default=1000, ge=0)  # messages per connection; 0: never
    smtp_max_failures: int = Field(default=20, ge=0)  # failed in a row stop a relay; 0: never
    smtp_data_timeout: float = Field(default=600.0, gt=0)  # for the final reply (RFC 5321)
    smtp_ca_file: Path | None = None  # trust these CAs instead of the system's
    smtp_tls_relaxed: bool = False  # allow plain text to relays off loopback
    send_retry_budget: float = Field(default=60.0, ge=0)  # seconds a 4xx is retried per run
    send_retry_backoff: float = Field(default=2.0, gt=0)  # first wait; doubles
    send_resend_unknown: bool = False
    send_batch: int = Field(default=100, ge=1, le=10_000)  # rows claimed / written at once
    send_workers: int = Field(default=1, ge=1, le=64)  # processes per `digest send` (PostgreSQL)
    send_lease: float = Field(default=60.0, ge=1)  # seconds a dead worker's claims are held
    suppress_after_bounces: int = Field(default=1, ge=0)  # "no such user" replies; 0: never
    dkim_key_file: Path | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None  # default: the domain of the list's sender
    run_dir: Path | None = None  # lock files; default: beside the SQLite database
    outbox: Path = Path("outbox")
    secret_key: SecretStr | None = None
    base_url: str = "http://127.0.0.1:8000"
    config: Path = Path("digest.toml")
    templates: Path | None = None
    # The public edge and returned mail (docs/subscribers.md).
    bounce_address: str | None = None  # set: a VERP envelope sender per delivery
    soft_bounce_limit: float = Field(default=5.0, gt=0)
    soft_bounce_half_life_days: float = Field(default=7.0, gt=0)
    # Without VERP, a bounce acts only on an address the ledger shows a delivery to this recent.
    bounce_match_days: float = Field(default=30.0, gt=0, le=365)
    confirm_hours: int = Field(default=72, ge=1, le=24 * 30)
    forwarded_allow_ips: str = "127.0.0.1"
    # Act as if the clock read this (ISO 8601 with an offset): every command acts at that one
    # moment. For backfills, demos and tests.
    now: AwareDatetime | None = None

    @field_validator("bounce_address")
    @classmethod
    def _bounce_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.fullmatch(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", value.strip()):
            raise ValueError("must be a plain address such as bounces@news.example.com")
        return value.strip()

    # Ingest: how many feeds are fetched at once, how long and how much each may take, how
    # often a failing one is retried (backoff doubling from fetch_retry_backoff seconds), and
    # after how many days of failing a feed is flagged in `digest send`'s summary.
    fetch_concurrency: int = Field(default=8, ge=1, le=64)
    fetch_connect_timeout: float = Field(default=10.0, gt=0, le=300)
    fetch_read_timeout: float = Field(default=30.0, gt=0, le=600)
    fetch_max_bytes: int = Field(default=10_000_000, ge=10_000, le=500_000_000)
    fetch_max_redirects: int = Field(default=5, ge=0, le=20)
    fetch_retries: int = Field(default=2, ge=0, le=10)
    fetch_retry_backoff: float = Field(default=1.0, ge=0, le=60)
    fetch_max_entries: int = Field(default=1000, ge=1, le=100_000)  # newest entries per feed
    feed_failing_days: int = Field(default=3, ge=1, le=365)
    # A feed whose newest entry is older than this many days is flagged stale; 0: never.
    feed_stale_days: int = Field(default=30, ge=0, le=3650)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", value):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip():
            parse_smtp_url(value.get_secret_value())
            return value
        return None

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL such as https://news.example.com")
        return value.rstrip("/")

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 32:
            raise ValueError("is too short: use at least 32 characters (`digest init` makes one)")
        return value

    @property
    def relay(self) -> SmtpRelay | None:
        return parse_smtp_url(self.smtp_url.get_secret_value()) if self.smtp_url else None

    def require_secret(self) -> bytes:
        if self.secret_key is None:
            raise ConfigError(
                "DIGEST_SECRET_KEY is not set",
                "run `digest init` to write one into .env, or set it in the environment",
            )
        return self.secret_key.get_secret_value().encode()


def one_mailbox(value: str) -> str:
    """``value`` if it is exactly one mailbox (``Name <local@domain>`` or ``local@domain``):
    not two addresses, not a group, no address hidden in the display name, nothing a mail
    client would read differently from how digest reads it."""
    example = "such as 'SpaceWar <news@spacewar.example>'"
    header = email.policy.default.header_factory("From", value)
    groups = header.groups
    if header.defects or len(groups) != 1 or len(groups[0].addresses) != 1:
        raise ValueError(f"must be exactly one mailbox, {example}")
    if groups[0].display_name is not None:
        raise ValueError(f"must be one mailbox, not a group, {example}")
    mailbox = groups[0].addresses[0]
    if (
        not mailbox.username
        or "." not in mailbox.domain
        or mailbox.domain.startswith(".")
        or mailbox.domain.endswith(".")
    ):
        raise ValueError(f"must be an address with a domain, {example}")
    if "@" in mailbox.display_name or "<" in mailbox.display_name:
        raise ValueError(
            "has an address in its display name; a reader would take it for "
            f"the sender: use a name, {example}"
        )
    if parseaddr(value)[1] != mailbox.addr_spec:
        raise ValueError(f"is read as two different addresses; write it {example}")
    return value


class SectionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    slug: str
    title: OneLine
    feeds: tuple[str, ...] = ()
    max_articles: int = Field(default=6, ge=1, le=50)
    # Feed categories this section takes from the feeds listed under [[routers]].
    categories: tuple[OneLine, ...] = ()
    # Overrides the list's max_age_hours for this section (0: no limit).
    max_age_hours: int | None = Field(default=None, ge=0, le=24 * 366)

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG_RE.match(value):
            raise ValueError("must be lower-case letters, digits and dashes, e.g. military-space")
        return value


class RouterConfig(BaseModel):
    """Feeds covering several sections: each entry goes to the section taking one of its
    categories (``SectionConfig.categories``), else to ``fallback``, else nowhere."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feeds: tuple[str, ...]
    fallback: str | None = None


class ListConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: OneLine
    sender: OneLine
    reply_to: OneLine | None = None
    subject: OneLine = "{title}: {headline}"
    timezone: str = "UTC"
    locale: str = "en"
    postal_address: str
    privacy_url: str | None = None
    sections: tuple[str, ...] | None = None  # None: every section of the newsletter
    # daily, weekly:mon ... weekly:sun, monthly:1 ... monthly:28 (digest.periods)
    schedule: str = "daily"
    send_at: str | None = None  # HH:MM in the list's time zone; none: from midnight
    # Each reader gets the edition at send_at in their own time zone (the list's when they
    # have none), on their own date (digest.periods.local_keys).
    deliver_local: bool = False
    # How far the first edition looks back; none: one period of the schedule.
    window_hours: int | None = Field(default=None, ge=1, le=24 * 31)
    # An article whose own date was older than this when digest first saw it is never
    # selected (a feed's backlog, a republished archive); 0: no limit.
    max_age_hours: int = Field(default=DEFAULT_MAX_AGE_HOURS, ge=0, le=24 * 366)

    # What a reader may choose instead of the list's own schedule, each a series of editions
    # of its own: daily, weekly or monthly, never more often than the list (weekly:fri,
    # monthly:15 name the day; default Monday, the 1st). None: a daily list offers daily and
    # weekly, any other list its own schedule only.
    frequencies: tuple[str, ...] | None = None
    frequency_send_at: str | None = None  # when the other series are due; none: send_at

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        return str(periods.parse_schedule(value))

    @field_validator("frequencies")
    @classmethod
    def _frequencies(
        cls, value: tuple[str, ...] | None, info: ValidationInfo
    ) -> tuple[str, ...] | None:
        if value is None or "schedule" not in info.data:
            return value
        return frequency_entries(value, periods.parse_schedule(info.data["schedule"]))

    @field_validator("frequency_send_at")
    @classmethod
    def _frequency_send_at(cls, value: str | None) -> str | None:
        return None if value is None else periods.parse_time(value).strftime("%H:%M")

    @field_validator("send_at")
    @classmethod
    def _send_at(cls, value: str | None) -> str | None:
        return None if value is None else periods.parse_time(value).strftime("%H:%M")

    # Public archive pages and an Atom feed of the editions whose sending started.
    archive: bool = True

    # The email's look (docs/decisions.md): "rich" gives every headline a one-line blurb and
    # a thumbnail; "compact" is a lead story and a list of further headlines.
    layout: Literal["rich", "compact"] = "rich"
    logo_url: str | None = None  # https only; shown in the header instead of the name
    logo_alt: OneLine | None = None  # default: the newsletter's name
    logo_width: int = Field(default=200, ge=16, le=600)  # displayed pixels
    logo_height: int | None = Field(default=None, ge=8, le=300)  # none: keeps its ratio
    # Light-mode colours; the dark-mode ones default to lighter tints that keep contrast.
    brand_color: str = DEFAULT_BRAND_COLOR  # header background, section titles
    accent_color: str = DEFAULT_ACCENT_COLOR  # links and the button
    brand_color_dark: str | None = None
    accent_color_dark: str | None = None
    # A folder of templates overriding the bundled ones file by file (relative to the
    # newsletter definition); a file it does not hold comes from DIGEST_TEMPLATES or the
    # bundled set.
    templates: Path | None = None

    @field_validator("logo_url")
    @classmethod
    def _logo_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.netloc or any(c.isspace() for c in value):
            raise ValueError("must be an absolute https:// URL (mail clients block others)")
        return value

    @field_validator("brand_color", "accent_color", "brand_color_dark", "accent_color_dark")
    @classmethod
    def _colour(cls, value: str | None) -> str | None:
        if value is not None and not HEX_COLOUR.fullmatch(value):
            raise ValueError(f"{value!r} is not a colour written #rrggbb, e.g. #0b2545")
        return None if value is None else value.lower()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SLUG_RE.match(value):
            raise ValueError("must be lower-case letters, digits and dashes, e.g. daily")
        return value

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        return one_mailbox(value)

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        fields = set(re.findall(r"{(\w*)[^}]*}", value))
        unknown = fields - SUBJECT_FIELDS
        if unknown:
            raise ValueError(
                f"uses {{{sorted(unknown)[0]}}}; the fields are {{title}}, {{date}}, {{headline}}"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone such as Europe/Paris") from None
        return value

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def cadence(self) -> periods.Schedule:
        """The parsed schedule, with its time."""
        return periods.parse_schedule(self.schedule, self.send_at)

    @property
    def window(self) -> int:
        """Hours the first edition looks back."""
        return self.window_hours or self.cadence.window_hours

    def key_at(self, now: datetime, frequency: str | None = None) -> str:
        """The key of the edition whose period holds ``now`` (of the series of
        ``frequency``; None: the list's own)."""
        return periods.edition_key(now, self.tz, self.series_schedule(frequency))

    @property
    def offered(self) -> dict[str, periods.Schedule]:
        """The frequencies a reader may choose, each with its series' schedule; the list's own
        first."""
        own = self.cadence
        entries = self.frequencies
        if entries is None:
            entries = ("daily", "weekly") if own.kind == "daily" else (own.kind,)
        at = self.frequency_send_at or self.send_at
        series: dict[str, periods.Schedule] = {own.kind: own}
        for entry in entries:
            kind = entry.split(":")[0]
            if kind != own.kind:
                default = {"weekly": "weekly:mon", "monthly": "monthly:1"}[kind]
                series[kind] = periods.parse_schedule(default if ":" not in entry else entry, at)
        return series

    @property
    def other_series(self) -> tuple[str, ...]:
        """The frequencies the list offers besides its own schedule."""
        return tuple(kind for kind in self.offered if kind != self.cadence.kind)

    def series_schedule(self, frequency: str | None) -> periods.Schedule:
        """The schedule of the series a reader of ``frequency`` gets (None, or a frequency the
        list no longer offers: the list's own)."""
        return self.offered.get(frequency or "", self.cadence)

    def schedule_of(self, key: str) -> periods.Schedule:
        """The schedule of the series the edition ``key`` belongs to."""
        return self.series_schedule(periods.key_kind(key))

    def window_of(self, key: str) -> int:
        """Hours the first edition of ``key``'s series looks back."""
        schedule = self.schedule_of(key)
        return self.window if schedule.kind == self.cadence.kind else schedule.window_hours

    def check_frequency(self, value: str) -> str | None:
        """A reader's frequency as stored (None: the list's own schedule); ValueError naming
        the values this list allows."""
        chosen = value.strip().lower()
        if chosen in ("", "default"):
            return None
        if chosen not in self.offered:
            raise ValueError(
                f"{value!r} is not a frequency list {self.name} offers: "
                f"{', '.join(self.offered)} (or default)"
            )
        return None if chosen == self.cadence.kind else chosen

    @property
    def sender_address(self) -> str:
        return parseaddr(self.sender)[1]


def frequency_entries(entries: tuple[str, ...], own: periods.Schedule) -> tuple[str, ...]:
    """A list's ``frequencies`` checked against its schedule ``own``; ValueError saying what
    is allowed otherwise."""
    allowed = periods.KINDS[periods.KINDS.index(own.kind) :]
    seen: list[str] = []
    for entry in entries:
        kind = entry.strip().lower().split(":")[0]
        if kind not in periods.KINDS:
            raise ValueError(
                f"{entry!r} is not a frequency: write {', '.join(allowed)} "
                "(weekly:fri or monthly:15 name the day)"
            )
        if kind not in allowed:
            raise ValueError(
                f"a {own.kind} list cannot offer {kind}: its readers may choose "
                f"{', '.join(allowed)}"
            )
        if kind in seen:
            raise ValueError(f"{kind} is named twice")
        if ":" in entry:
            schedule = periods.parse_schedule(entry)
            if kind == own.kind and schedule != periods.parse_schedule(str(own)):
                raise ValueError(
                    f"{entry!r}: the list's own {kind} edition follows its schedule "
                    f"({own}); write {kind}"
                )
        seen.append(kind)
    if own.kind not in seen:
        raise ValueError(f"must include the list's own schedule, {own.kind}")
    return tuple(entry.strip().lower() for entry in entries)


class Newsletter(BaseModel):
    """The newsletter definition: its lists and sections, from the TOML file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: OneLine
    website: str
    lists: tuple[ListConfig, ...]
    sections: tuple[SectionConfig, ...]
    routers: tuple[RouterConfig, ...] = ()
    # Length (characters) a feed entry's summary is cut to at ingest.
    summary_chars: int = Field(default=400, ge=60, le=5000)

    @model_validator(mode="after")
    def _consistent(self) -> Newsletter:
        slugs = [s.slug for s in self.sections]
        if len(set(slugs)) != len(slugs):
            raise ValueError("sections: two sections share a slug")
        names = [lst.name for lst in self.lists]
        if not names:
            raise ValueError("lists: define at least one [[lists]] table")
        if len(set(names)) != len(names):
            raise ValueError("lists: two lists share a name")
        for lst in self.lists:
            for slug in lst.sections or ():
                if slug not in slugs:
                    raise ValueError(f"lists.{lst.name}.sections: no section {slug!r}")
        self._check_routers(slugs)
        return self

    def _check_routers(self, slugs: list[str]) -> None:
        listed = {url for s in self.sections for url in s.feeds}
        for number, router in enumerate(self.routers, start=1):
            if router.fallback is not None and router.fallback not in slugs:
                raise ValueError(f"routers.{number}.fallback: no section {router.fallback!r}")
            if twice := next((url for url in router.feeds if url in listed), None):
                raise ValueError(
                    f"routers.{number}.feeds: {twice} is also a section's feed; "
                    "list it in one place"
                )
            listed.update(router.feeds)
            if router.fallback is None and not any(s.categories for s in self.sections):
                raise ValueError(
                    f"routers.{number}: no section has categories and there is "
                    "no fallback, so nothing would be taken"
                )

    def get_list(self, name: str | None) -> ListConfig:
        if name is None:
            if len(self.lists) == 1:
                return self.lists[0]
            raise ConfigError(
                "this newsletter has several lists",
                f"name one with --list ({', '.join(lst.name for lst in self.lists)})",
            )
        for lst in self.lists:
            if lst.name == name:
                return lst
        raise ConfigError(
            f"no list named {name!r}", f"lists: {', '.join(lst.name for lst in self.lists)}"
        )

    def sections_of(self, lst: ListConfig) -> tuple[SectionConfig, ...]:
        if lst.sections is None:
            return self.sections
        by_slug = {s.slug: s for s in self.sections}
        return tuple(by_slug[slug] for slug in lst.sections)

    def section(self, slug: str) -> SectionConfig | None:
        return next((s for s in self.sections if s.slug == slug), None)


def _first_error(exc: ValidationError, prefix: str = "") -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if p != "__root__")
    msg = err["msg"].removeprefix("Value error, ")
    return f"{prefix}{loc}: {msg}" if loc else f"{prefix}{msg}"


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "DIGEST_" + str(err["loc"][0]).upper() if err["loc"] else "settings"
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{name} {msg}" if msg[0].islower() else f"{name}: {msg}") from None


def load_newsletter(path: Path) -> Newsletter:
    """Read and validate the newsletter definition; feed paths become relative to its folder."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"newsletter definition {path} not found",
            "set DIGEST_CONFIG or run digest where digest.toml is",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    for section in data.get("sections", []) if isinstance(data.get("sections"), list) else []:
        if isinstance(section, dict) and isinstance(section.get("feeds"), list):
            section["feeds"] = [_resolve_feed(str(f), path.parent) for f in section["feeds"]]
    for router in data.get("routers", []) if isinstance(data.get("routers"), list) else []:
        if isinstance(router, dict) and isinstance(router.get("feeds"), list):
            router["feeds"] = [_resolve_feed(str(f), path.parent) for f in router["feeds"]]
    for lst in data.get("lists", []) if isinstance(data.get("lists"), list) else []:
        # A list's template folder is relative to this file, like its feeds.
        if isinstance(lst, dict) and isinstance(lst.get("templates"), str):
            lst["templates"] = str((path.parent / lst["templates"]).resolve())
    try:
        return Newsletter.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc, f"{path}: ")) from None


def _resolve_feed(feed: str, base: Path) -> str:
    if re.match(r"^[a-z][a-z0-9+.-]*://", feed):
        return feed
    return str((base / feed).resolve())


def load(**overrides: Any) -> tuple[Settings, Newsletter]:
    settings = load_settings(**overrides)
    return settings, load_newsletter(settings.config)
