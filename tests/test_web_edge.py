"""The public edge against a hostile visitor: methods, origins, sign-up floods and probes,
the shared view page, body sizes and logs. Routing is exercised on the real app through
Starlette's TestClient; what depends on the server (body streaming, the access log) runs on
a real uvicorn on a loopback port or on a real `digest serve` process."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from conftest import ROOT
from sqlalchemy import select
from starlette.testclient import TestClient
from support.smtpd import smtp_server

from digest import pipeline
from digest.config import load_newsletter, load_settings
from digest.store import open_store, schema
from digest.store.subscribers import NewSubscriber
from digest.tokens import make_token
from digest.web import create_app

SECRET = "e" * 48
BASE = "https://news.example.com"


@dataclass
class Edge:
    ctx: pipeline.Context
    http: TestClient
    smtp: object

    def token(self, sid: int, purpose: str, list_name: str = "daily") -> str:
        return make_token(SECRET.encode(), sid, list_name, purpose)

    def add(self, email: str, **fields) -> int:
        self.ctx.store.add_subscribers(
            [NewSubscriber(email=email, lists=("daily",), **fields)], datetime.now(timezone.utc))
        return self.ctx.store.subscriber(email).id

    def snapshot(self) -> dict[str, list]:
        """Every row of every table: what a request may or may not have changed."""
        with self.ctx.store.engine.connect() as conn:
            return {t.name: sorted(map(repr, conn.execute(select(t)).all()))
                    for t in schema.metadata.sorted_tables}


@pytest.fixture
def edge(tmp_path, db_url) -> Iterator[Edge]:
    with smtp_server() as smtp:
        settings = load_settings(
            config=ROOT / "digest.toml", database_url=db_url, secret_key=SECRET,
            base_url=BASE, smtp_url=f"smtp://127.0.0.1:{smtp.port}", outbox=tmp_path / "outbox")
        store = open_store(settings.database_url)
        ctx = pipeline.Context(settings, load_newsletter(settings.config), store)
        app = create_app(settings, ctx.newsletter, store)
        with TestClient(app, base_url=BASE) as http:
            yield Edge(ctx, http, smtp)
        store.close()


def _pending_confirmation(edge: Edge, email: str) -> str:
    """A confirm token of a sign-up waiting for its confirmation (stored as the form does)."""
    now = datetime.now(timezone.utc)
    request_id, _sid = edge.ctx.store.request_confirmation(email, "", "daily", None, now, None)
    return edge.token(request_id, "confirm")


# -- only POST changes state -------------------------------------------------------------------

def test_only_post_changes_state_on_every_route_and_head_behaves_as_get(edge):
    sid = edge.add("reader@example.com")
    now = datetime.now(timezone.utc)
    pipeline.fetch(edge.ctx, now)
    edition = pipeline.current_edition(edge.ctx, edge.ctx.newsletter.get_list("daily"), now,
                                       create=True)
    confirm = _pending_confirmation(edge, "new@example.com")
    routes = {
        "/": None,
        "/subscribe": {"email": "someone@example.com", "list": "daily"},
        f"/c/{confirm}": {},
        f"/u/{edge.token(sid, 'unsubscribe')}": {"List-Unsubscribe": "One-Click"},
        f"/p/{edge.token(sid, 'preferences')}": {"action": "unsubscribe"},
        f"/e/{edition.key}/{edge.token(sid, 'view')}": None,
        "/healthz": None,
    }
    for path, form in routes.items():
        for method in ("GET", "HEAD", "OPTIONS"):
            before = edge.snapshot()
            answer = edge.http.request(method, path)
            assert answer.status_code in (200, 404, 405), (method, path, answer.status_code)
            assert edge.snapshot() == before, f"{method} {path} changed the store"
        if method == "HEAD":
            assert answer.content == b""
    # HEAD answers as GET does, without a body.
    for path in routes:
        got, head = edge.http.get(path), edge.http.head(path)
        assert head.status_code == got.status_code, path
    # POST changes state where a form posts, and nowhere else.
    changed = {}
    for path, form in routes.items():
        before = edge.snapshot()
        answer = edge.http.post(path, data=form or {})
        changed[path.split("/")[1] or "/"] = edge.snapshot() != before
        assert answer.status_code in (200, 303, 404, 405), (path, answer.status_code)
    assert changed == {"/": False, "subscribe": True, "c": True, "u": True, "p": True,
                       "e": False, "healthz": False}
