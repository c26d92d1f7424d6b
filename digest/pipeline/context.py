"""What every command works with: settings, the newsletter definition and the store; and
`digest init`."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from pydantic import SecretStr

from digest.config import Newsletter, Settings, load_newsletter, load_settings
from digest.files import FILE_MODE, open_private, private_dir
from digest.store import Store, open_store

STARTER_FEED = "example-feed.xml"  # the feed the starter digest.toml names, beside it
LOG_DIR = Path("log")  # where the README's cron lines write their summaries and errors


# DIGEST_NOW, set when a command opens its context: the whole command then acts at that one
# moment (articles fetched, editions due, messages dated), so that commands run one after
# the other with the same DIGEST_NOW see each other's work as done at the same time. Only
# timestamps read this clock; waits and rates use the monotonic clock.
_fixed: datetime | None = None


def utcnow() -> datetime:
    """The time commands act at: DIGEST_NOW when it is set, else the real clock."""
    return datetime.now(UTC) if _fixed is None else _fixed


def set_clock(now: datetime | None) -> None:
    """Make ``utcnow`` read ``now`` (None: the real clock)."""
    global _fixed
    _fixed = None if now is None else now.astimezone(UTC)


@dataclass
class Context:
    """What every command works with: settings, the newsletter definition and the store."""

    settings: Settings
    newsletter: Newsletter
    store: Store

    @classmethod
    def open(cls, settings: Settings | None = None, *, sync: bool = True) -> Context:
        """``sync``: bring the store's lists and sections in line with the newsletter
        definition (a send worker started by a run that did it already skips it)."""
        settings = settings or load_settings()
        set_clock(settings.now)
        newsletter = load_newsletter(settings.config)
        ctx = cls(settings, newsletter, open_store(settings.database_url, migrate_schema=sync))
        if sync:
            ctx.sync()
        return ctx

    def sync(self) -> None:
        """Bring the store's lists and sections in line with the newsletter definition."""
        self.store.ensure_lists((lst.name, lst.title) for lst in self.newsletter.lists)
        self.store.sync_sections((s.slug, s.title, s.feeds) for s in self.newsletter.sections)

    def lists_covered(self, name: str | None) -> list[str | None]:
        """The lists a command run with ``--list name`` covers: that one when named, else
        every list of the newsletter, each by name (a lone list stays ``None``, so a one-list
        newsletter runs exactly as with no list named)."""
        if name is not None or len(self.newsletter.lists) == 1:
            return [name]
        return [lst.name for lst in self.newsletter.lists]

    def close(self) -> None:
        self.store.close()


def init(settings: Settings, env_path: Path = Path(".env")) -> dict:
    """Make a folder ready: a starter newsletter definition (and the example feed it names)
    when there is none, the store created or upgraded, a .env holding a new secret key
    when there is none, and the ``log/`` folder the cron lines write to (0700: the logs name
    subscribers). Nothing that exists is overwritten."""
    wrote_config = _write_starter(settings.config)
    private_dir(env_path.parent / LOG_DIR)
    store = open_store(settings.database_url)
    store.close()
    wrote_env = False
    if settings.secret_key is None:
        existing = env_path.read_text(encoding="utf-8") if env_path.exists() else ""
        if "DIGEST_SECRET_KEY=" not in existing:
            line = f"DIGEST_SECRET_KEY={secrets.token_urlsafe(48)}\n"
            sep = "" if not existing or existing.endswith("\n") else "\n"
            with open_private(env_path, "a", encoding="utf-8") as env:
                env.write(sep + line)
            os.chmod(env_path, FILE_MODE)  # an older .env now holds the secret too
            wrote_env = True
    return {
        "database": settings.database_url,
        "env_file": str(env_path) if wrote_env else None,
        "config": str(settings.config) if wrote_config else None,
        "log": str(env_path.parent / LOG_DIR),
    }


def _write_starter(config: Path) -> bool:
    """Write the starter definition to ``config`` (and its example feed beside it) if there is
    no file there; whether it was written."""
    if config.exists():
        return False
    starter = resources.files("digest.starter")
    config.parent.mkdir(parents=True, exist_ok=True)
    feed = config.parent / STARTER_FEED
    if not feed.exists():
        feed.write_bytes((starter / STARTER_FEED).read_bytes())
    try:  # exclusive creation: a definition written meanwhile by someone else is theirs
        with open(config, "xb") as file:  # holds no secret: the umask's mode
            file.write((starter / "digest.toml").read_bytes())
    except FileExistsError:
        return False
    return True


_PREVIEW_KEY_LABEL = b"digest preview studio: links that act on nothing"


def preview_settings(settings: Settings) -> Settings:
    """``settings`` with a secret key derived for previews only: the tokens in the messages
    of `digest preview` and the studio are well formed, but the live edge (which checks them
    with the real key) refuses every one of them."""
    if settings.secret_key is None:
        return settings
    key = hmac.new(settings.require_secret(), _PREVIEW_KEY_LABEL, hashlib.sha256).hexdigest()
    return settings.model_copy(update={"secret_key": SecretStr(key)})
