"""What every command works with: settings, the newsletter definition and the store; and
`digest init`."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from digest.config import Newsletter, Settings, load_newsletter, load_settings
from digest.store import Store, open_store


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Context:
    """What every command works with: settings, the newsletter definition and the store."""

    settings: Settings
    newsletter: Newsletter
    store: Store

    @classmethod
    def open(cls, settings: Settings | None = None, *, sync: bool = True) -> "Context":
        """``sync``: bring the store's lists and sections in line with the newsletter
        definition (a send worker started by a run that did it already skips it)."""
        settings = settings or load_settings()
        newsletter = load_newsletter(settings.config)
        store = open_store(settings.database_url, migrate_schema=sync)
        if sync:
            store.ensure_lists((lst.name, lst.title) for lst in newsletter.lists)
            store.sync_sections((s.slug, s.title, s.feeds) for s in newsletter.sections)
        return cls(settings, newsletter, store)

    def close(self) -> None:
        self.store.close()


def init(settings: Settings, env_path: Path = Path(".env")) -> dict:
    """Create (or upgrade) the store, and a .env holding a new secret key if there is none."""
    store = open_store(settings.database_url)
    store.close()
    wrote_env = False
    if settings.secret_key is None:
        existing = env_path.read_text(encoding="utf-8") if env_path.exists() else ""
        if "DIGEST_SECRET_KEY=" not in existing:
            line = f"DIGEST_SECRET_KEY={secrets.token_urlsafe(48)}\n"
            sep = "" if not existing or existing.endswith("\n") else "\n"
            env_path.write_text(existing + sep + line, encoding="utf-8")
            env_path.chmod(0o600)
            wrote_env = True
    return {"database": settings.database_url, "env_file": str(env_path) if wrote_env else None}
