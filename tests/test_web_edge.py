"""The public edge against a hostile visitor: methods, origins, sign-up floods and probes,
the shared view page, body sizes and logs. Routing is exercised on the real app through
Starlette's TestClient; what depends on the server (body streaming, the access log) runs on
a real uvicorn on a loopback port or on a real `digest serve` process."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from digest import pipeline
from digest.audience.tokens import make_token
from digest.config import load_newsletter, load_settings
from digest.models import NewSubscriber
from digest.store import open_store, schema
from digest.web import create_app
from digest.web.server import server_config
from tests.support.smtpd import free_port, smtp_server
from tests.support.values import BASE_URL, ROOT, SECRET, SECRET_BYTES
from tests.support.web import uvicorn_running


@dataclass
class Edge:
    ctx: pipeline.Context
    http: TestClient
    smtp: object

    def token(self, sid: int, purpose: str, list_name: str = "daily") -> str:
        return make_token(SECRET_BYTES, sid, list_name, purpose)

    def add(self, email: str, **fields) -> int:
        self.ctx.store.add_subscribers(
            [NewSubscriber(email=email, lists=("daily",), **fields)], datetime.now(UTC)
        )
        return self.ctx.store.subscriber(email).id

    def snapshot(self) -> dict[str, list]:
        """Every row of every table: what a request may or may not have changed."""
        with self.ctx.store.engine.connect() as conn:
            return {
                t.name: sorted(map(repr, conn.execute(select(t)).all()))
                for t in schema.metadata.sorted_tables
            }


def _settings(db_url: str, smtp_port: int, tmp_path):
    return load_settings(
        config=ROOT / "digest.toml",
        database_url=db_url,
        secret_key=SECRET,
        base_url=BASE_URL,
        smtp_url=f"smtp://127.0.0.1:{smtp_port}",
        outbox=tmp_path / "outbox",
    )


@pytest.fixture
def edge(tmp_path, db_url) -> Iterator[Edge]:
    """The app on a real store and a real SMTP server. Its lifespan (the mailer of
    confirmations) is not started: tests drain the sign-up queue themselves."""
    with smtp_server() as smtp:
        settings = _settings(db_url, smtp.port, tmp_path)
        store = open_store(settings.database_url)
        ctx = pipeline.Context(settings, load_newsletter(settings.config), store)
        app = create_app(settings, ctx.newsletter, store)
        yield Edge(ctx, TestClient(app, base_url=BASE_URL), smtp)
        store.close()


def drain(edge: Edge, at: datetime | None = None, settings=None):
    ctx = (
        edge.ctx
        if settings is None
        else pipeline.Context(settings, edge.ctx.newsletter, edge.ctx.store)
    )
    return asyncio.run(pipeline.send_confirmations(ctx, at or datetime.now(UTC)))


def _in_every_state(edge: Edge, tag: str) -> dict[str, str]:
    """An address in each state the sign-up form must not tell apart."""
    now = datetime.now(UTC)
    emails = {
        state: f"{state}-{tag}@example.com"
        for state in ("new", "active", "pending", "unsubscribed", "suppressed")
    }
    edge.add(emails["active"])
    edge.add(emails["unsubscribed"])
    edge.ctx.store.set_membership(
        edge.ctx.store.subscriber(emails["unsubscribed"]).id, "daily", now, state="unsubscribed"
    )
    edge.ctx.store.request_confirmation(emails["pending"], "", "daily", None, now, None)
    edge.ctx.store.suppress(emails["suppressed"], "complaint", now)
    return emails


@contextmanager
def _uvicorn(app, settings, **options) -> Iterator[str]:
    """``app`` on a real uvicorn, configured as `digest serve` does, on a free loopback port."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = server_config(app, settings, log_level="warning", **options)
    try:
        with uvicorn_running(config, sockets=[sock]):
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def _raw_post(url: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """A POST written in one piece on a fresh connection, and the whole answer (a client
    that writes headers and body apart waits out delayed ACKs, which hides the server's
    own time)."""
    import socket

    host, port = url.removeprefix("http://").split(":")
    head = "".join(
        f"{k}: {v}\r\n"
        for k, v in {
            "Host": f"{host}:{port}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(len(body)),
            "Connection": "close",
            **headers,
        }.items()
    )
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(f"POST {path} HTTP/1.1\r\n{head}\r\n".encode() + body)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def _pending_confirmation(edge: Edge, email: str) -> str:
    """A confirm token of a sign-up waiting for its confirmation (stored as the form does)."""
    now = datetime.now(UTC)
    request_id, _sid = edge.ctx.store.request_confirmation(email, "", "daily", None, now, None)
    return edge.token(request_id, "confirm")


# -- only POST changes state -------------------------------------------------------------------


def test_only_post_changes_state_on_every_route_and_head_behaves_as_get(edge):
    sid = edge.add("reader@example.com")
    now = datetime.now(UTC)
    pipeline.fetch(edge.ctx, now)
    edition = pipeline.current_edition(
        edge.ctx, edge.ctx.newsletter.get_list("daily"), now, create=True
    )
    confirm = _pending_confirmation(edge, "new@example.com")
    routes = {
        "/": None,
        "/subscribe": {"email": "someone@example.com", "list": "daily"},
        f"/c/{confirm}": {},
        f"/u/{edge.token(sid, 'unsubscribe')}": {"List-Unsubscribe": "One-Click"},
        f"/p/{edge.token(sid, 'preferences')}": {"action": "unsubscribe"},
        f"/e/{edition.key}/{edge.token(sid, 'view')}": None,
        "/shared?list=daily": None,
        "/healthz": None,
    }
    for path in routes:
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
    assert changed == {
        "/": False,
        "subscribe": True,
        "c": True,
        "u": True,
        "p": True,
        "e": False,
        "shared?list=daily": False,
        "healthz": False,
    }


# -- sign-up: the same answer, the same work, whatever the address and the relay ------------


def _answer(response) -> tuple:
    return (
        response.status_code,
        response.content,
        tuple(sorted((k, v) for k, v in response.headers.items() if k != "date")),
    )


def test_sign_up_answers_are_byte_identical_whatever_the_state_and_the_relay(edge, tmp_path):
    emails = _in_every_state(edge, "a")
    answers = {
        state: _answer(edge.http.post("/subscribe", data={"email": email}))
        for state, email in emails.items()
    }
    # The relay down: the answer is still the same (the mail is only queued).
    down = _settings(edge.ctx.settings.database_url, free_port(), tmp_path)
    app = create_app(down, edge.ctx.newsletter, edge.ctx.store)
    with TestClient(app, base_url=BASE_URL) as http:  # with its mailer running, and failing
        for state, email in _in_every_state(edge, "b").items():
            answers[f"{state}, relay down"] = _answer(
                http.post("/subscribe", data={"email": email})
            )
    assert len(set(answers.values())) == 1, {k: v[:2] for k, v in answers.items()}
    assert answers["new"][0] == 200 and b"Check your inbox" in answers["new"][1]


def test_sign_up_does_the_same_work_whatever_the_state(edge):
    from sqlalchemy import event

    statements: list[str] = []
    event.listen(
        edge.ctx.store.engine,
        "before_cursor_execute",
        lambda conn, cursor, sql, *rest: statements.append(sql),
    )
    work = {}
    for state, email in _in_every_state(edge, "w").items():
        statements.clear()
        assert edge.http.post("/subscribe", data={"email": email}).status_code == 200
        work[state] = list(statements)
    assert all(w == work["new"] for w in work.values()), work
    assert edge.smtp.handler.messages == []  # nothing is mailed inside the request


def test_sign_up_takes_the_same_time_whatever_the_state(tmp_path, db_url):
    """Coarse, over a real server with its mailer running: the medians of interleaved
    requests per state agree within half the fastest plus 2 ms (mailing inside the request
    took several times longer). A machine busy with other work gets three tries."""
    with smtp_server() as smtp:
        settings = _settings(db_url, smtp.port, tmp_path)
        store = open_store(db_url)
        ctx = pipeline.Context(settings, load_newsletter(settings.config), store)
        app = create_app(settings, ctx.newsletter, store)
        with _uvicorn(app, settings) as url:
            for attempt in range(3):
                medians = _sign_up_medians(Edge(ctx, None, smtp), url, attempt)
                fastest = min(medians.values())
                if max(medians.values()) < fastest * 1.5 + 0.002:
                    break
        store.close()
    assert max(medians.values()) < fastest * 1.5 + 0.002, medians


def _sign_up_medians(edge: Edge, url: str, attempt: int, rounds: int = 41) -> dict[str, float]:
    emails = [_in_every_state(edge, f"t{attempt}-{n}") for n in range(rounds)]
    states = list(emails[0])
    times: dict[str, list[float]] = {state: [] for state in states}
    for n in range(rounds):
        random.Random(n).shuffle(states)  # no state always follows another
        for state in states:
            started = time.perf_counter()
            answer = _raw_post(
                url,
                "/subscribe",
                f"email={emails[n][state]}".encode(),
                {"X-Forwarded-For": f"192.0.{attempt}.{n}"},
            )
            times[state].append(time.perf_counter() - started)
            assert answer.startswith(b"HTTP/1.1 200 "), answer[:80]
    return {state: statistics.median(t) for state, t in times.items()}


def test_plus_tagged_variants_of_one_mailbox_get_at_most_one_mail_per_gap_and_three_a_day(edge):
    start = datetime.now(UTC)
    for minutes, tags in ((0, ("", "+a", "+b")), (11, ("+c", "+d")), (22, ("+e",)), (33, ("+f",))):
        for tag in tags:
            answer = edge.http.post("/subscribe", data={"email": f"Victim{tag}@example.com"})
            assert answer.status_code == 200
        drain(edge, start + timedelta(minutes=minutes))
    assert len(edge.smtp.handler.messages) == 3
    # Another mailbox is not held back by the victim's.
    edge.http.post("/subscribe", data={"email": "other+x@example.com"})
    assert drain(edge, start + timedelta(minutes=34)).sent == 1


def test_a_sign_up_over_its_mailboxs_limit_is_mailed_nothing_yet_records_the_list_it_asked_for(
    edge,
):
    start = datetime.now(UTC)
    edge.http.post("/subscribe", data={"email": "reader@example.com"})
    assert drain(edge, start).sent == 1
    edge.http.post("/subscribe", data={"email": "reader+news@example.com"})
    assert drain(edge, start + timedelta(minutes=1)).dropped == 1  # within the mailbox's gap
    assert len(edge.smtp.handler.messages) == 1
    record = edge.ctx.store.record("reader+news@example.com")
    assert record is not None and record.status.value == "pending"
    assert record.membership("daily").state == "pending"  # as the consent policy's sign-up
    with edge.ctx.store.engine.connect() as conn:  # and no confirm link left open for it
        assert (
            conn.execute(
                select(schema.confirmations).where(
                    schema.confirmations.c.subscriber_id == record.id
                )
            ).all()
            == []
        )


def test_one_client_cannot_queue_more_than_its_limit_of_sign_ups(edge):
    for n in range(10):
        assert edge.http.post("/subscribe", data={"email": f"n{n}@example.com"}).status_code == 200
    before = edge.snapshot()
    refused = edge.http.post("/subscribe", data={"email": "eleven@example.com"})
    assert refused.status_code == 429 and edge.snapshot() == before
    other = TestClient(edge.http.app, base_url=BASE_URL, client=("198.51.100.7", 4000))
    assert other.post("/subscribe", data={"email": "eleven@example.com"}).status_code == 200


def test_the_confirmation_waits_for_a_relay_that_is_down_and_goes_when_it_is_back(edge, tmp_path):
    assert edge.http.post("/subscribe", data={"email": "patient@example.com"}).status_code == 200
    down = _settings(edge.ctx.settings.database_url, free_port(), tmp_path)
    waited = drain(edge, settings=down)
    assert waited.waiting == 1 and waited.sent == 0
    assert drain(edge).sent == 1
    mail = edge.smtp.handler.wait_for_messages(1)[0]
    assert mail.rcpt_tos == ("patient@example.com",) and b"/c/" in mail.raw
    assert drain(edge).sent == 0  # sent once


# -- same origin ---------------------------------------------------------------------------

CROSS_ORIGIN = (
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Referer": "https://evil.example/form.html"},
    {"Origin": "http://news.example.com"},
)


def test_a_form_post_from_another_origin_changes_nothing(edge):
    sid = edge.add("reader@example.com")
    confirm = _pending_confirmation(edge, "pending@example.com")
    posts = {
        "/subscribe": {"email": "victim@example.com"},
        f"/c/{confirm}": {},
        f"/u/{edge.token(sid, 'unsubscribe')}": {"List-Unsubscribe": "One-Click"},
        f"/p/{edge.token(sid, 'preferences')}": {"action": "unsubscribe"},
    }
    for path, form in posts.items():
        for headers in CROSS_ORIGIN:
            before = edge.snapshot()
            answer = edge.http.post(path, data=form, headers=headers)
            assert answer.status_code == 403, (path, headers, answer.status_code)
            assert edge.snapshot() == before, (path, headers)
    assert edge.smtp.handler.messages == []
    # The site's own pages, and mail systems' one-click POSTs (no browser headers), pass.
    for path, form in posts.items():
        for headers in (
            {"Origin": BASE_URL, "Sec-Fetch-Site": "same-origin"},
            # What a browser sends for a form of a page served with Referrer-Policy: no-referrer.
            {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
            {"Origin": "https://NEWS.example.com:443"},
            {"Referer": f"{BASE_URL}/subscribe"},
            {},
        ):
            assert edge.http.post(path, data=form, headers=headers).status_code != 403


def test_digest_serve_answers_its_public_name_and_loopback_only(edge, tmp_path):
    # A page whose own name was rebound to this server sends that name as Host: refused.
    settings = _settings(edge.ctx.settings.database_url, 9, tmp_path)
    with _uvicorn(edge.http.app, settings) as url:
        port = url.rsplit(":", 1)[1]
        for host in ("news.example.com", f"127.0.0.1:{port}", f"localhost:{port}"):
            assert httpx.get(f"{url}/healthz", headers={"Host": host}).status_code == 200
        for host in ("evil.example", f"evil.example:{port}", "news.example.com.evil.example"):
            answer = httpx.get(f"{url}/subscribe", headers={"Host": host})
            assert answer.status_code == 421, host


# -- body size and logs ----------------------------------------------------------------------


def _stream_post(url: str, path: str, total: int) -> tuple[bytes, int]:
    """POST ``total`` bytes chunked, in 64 KB pieces, reading the answer as soon as there is
    one: (the answer, how many body bytes were sent by then)."""
    import select
    import socket

    host, port = url.removeprefix("http://").split(":")
    sent, answer, piece = 0, b"", b"a=" + b"x" * (64 * 1024 - 2)
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        try:
            while sent < total and not select.select([conn], [], [], 0)[0]:
                conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the server stopped reading: its answer is already there
        try:
            while chunk := conn.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer:
                    break
        except ConnectionResetError:
            pass
    return answer, sent


def test_a_form_body_over_64_kb_is_refused_unread_streamed_or_announced(edge):
    sid = edge.add("reader@example.com")
    settings = edge.ctx.settings
    app = create_app(settings, edge.ctx.newsletter, edge.ctx.store)
    before = edge.snapshot()
    with _uvicorn(app, settings) as url:
        for path in ("/subscribe", f"/p/{edge.token(sid, 'preferences')}"):
            answer, sent = _stream_post(url, path, 150 * 1024 * 1024)
            assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
            assert sent < 32 * 1024 * 1024, sent  # it stopped reading long before the end
            announced = httpx.post(
                f"{url}{path}",
                content=b"x" * (64 * 1024 + 1),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert announced.status_code == 413
        # A form of up to 64 KB is read as usual.
        small = httpx.post(
            f"{url}/subscribe",
            data={"email": "fits@example.com", "name": "x" * 100, "pad": "y" * (60 * 1024)},
        )
        assert small.status_code == 200 and "Check your inbox" in small.text
    after = edge.snapshot()
    assert after["subscriptions"] == before["subscriptions"]
    assert len(after["signups"]) == len(before["signups"]) + 1  # only the small form's


def test_the_logs_of_digest_serve_never_show_a_token(tmp_path, db_url):
    import os
    import signal
    import socket
    import subprocess
    import sys

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")} | {
        "DIGEST_CONFIG": str(ROOT / "digest.toml"),
        "DIGEST_SECRET_KEY": SECRET,
        "DIGEST_DATABASE_URL": db_url,
        "DIGEST_BASE_URL": f"http://127.0.0.1:{port}",
        "DIGEST_SMTP_URL": f"smtp://127.0.0.1:{free_port()}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    tokens = [
        make_token(SECRET_BYTES, 1, "daily", purpose)
        for purpose in ("unsubscribe", "preferences", "confirm", "view")
    ]
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError as exc:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError(
                        proc.stderr.read()
                        if proc.poll() is not None
                        else "digest serve did not answer"
                    ) from exc
                time.sleep(0.05)  # polling the port with a deadline
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            unsubscribe, preferences, confirm, view = tokens
            http.get(f"/u/{unsubscribe}")
            http.post(f"/u/{unsubscribe}")
            http.get(f"/p/{preferences}?saved=1")
            http.head(f"/c/{confirm}")
            http.get(f"/e/2026-01-01/{view}")
            http.post("/subscribe", data={"email": "logged@example.com"})
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    log = out + err
    assert '"GET /u/*** HTTP/1.1" 404' in log and '"GET /e/2026-01-01/*** HTTP/1.1"' in log
    assert "/p/***?saved=1" in log
    for token in tokens:
        assert token not in log


# -- a link grants its own purpose only --------------------------------------------------------


def test_the_unsubscribe_pages_hand_out_no_preferences_token(edge):
    sid = edge.add("reader@example.com")
    url = f"/u/{edge.token(sid, 'unsubscribe')}"
    for page in (edge.http.get(url), edge.http.post(url)):
        assert page.status_code == 200
        assert "/p/" not in page.text and edge.token(sid, "preferences") not in page.text


def test_preferences_open_with_the_preferences_token_only(edge):
    sid = edge.add("reader@example.com")
    for purpose in ("unsubscribe", "view", "confirm"):
        assert edge.http.get(f"/p/{edge.token(sid, purpose)}").status_code == 404
        before = edge.snapshot()
        assert (
            edge.http.post(
                f"/p/{edge.token(sid, purpose)}", data={"action": "unsubscribe"}
            ).status_code
            == 404
        )
        assert edge.snapshot() == before
    assert edge.http.get(f"/p/{edge.token(sid, 'preferences')}").status_code == 200
