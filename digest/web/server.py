"""How ``digest serve`` runs the app on uvicorn (tests run it the same way)."""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp

from digest.config import Settings
from digest.web.logs import uvicorn_log_config


def server_config(
    app: ASGIApp,
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
) -> uvicorn.Config:
    # Client addresses (kept as consent evidence) come from X-Forwarded-For / -Proto only
    # when the peer is one of DIGEST_FORWARDED_ALLOW_IPS, i.e. the reverse proxy. The
    # lifespan runs the sender of confirmation mails; the logs never show a link's token.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        log_level=log_level,
        lifespan="on",
        log_config=uvicorn_log_config(),
    )
