"""Shared fixtures. A developer's own DIGEST_* settings never leak into a test.

Every test that uses the store (``db_url``, ``store``, ``make_db_url``) runs once per engine:
on SQLite always, and on PostgreSQL too when ``DIGEST_TEST_POSTGRES_URL`` names a server
(``postgresql://user:password@host/database``; the role needs CREATEDB). Each PostgreSQL test
gets a fresh database, copied from a template database migrated once per session, and dropped
after the test. Tests that check SQLite itself are marked ``sqlite_only``. Without the URL the
run ends with a line saying that the PostgreSQL suite was skipped.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from digest.pipeline.context import set_clock
from tests.support.browser import Browser, find_chromium
from tests.support.cli import load_sample, run, sample_settings, set_settings
from tests.support.httpd import FeedServer
from tests.support.network import loopback_only
from tests.support.smtpd import RecordingServer, smtp_server
from tests.support.values import EXAMPLE_CSV, ROOT

# Real-world feeds and mail kept beside the repository (../shared/corpus), not in it.
CORPUS = Path(os.environ.get("DIGEST_TEST_CORPUS", "").strip() or ROOT.parent / "shared" / "corpus")
POSTGRES_URL = os.environ.get("DIGEST_TEST_POSTGRES_URL", "").strip()
ENGINES = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]
# Databases of this session are named <prefix><pid>_<n>; a killed session's are dropped later.
_PREFIX = "digest_test_"


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only: checks SQLite itself (pragmas, files); not run on PostgreSQL"
    )
    config.addinivalue_line(
        "markers",
        "pipelined_too: a test using mail_server also runs against one offering PIPELINING",
    )


def pytest_generate_tests(metafunc) -> None:
    if "mail_server" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "pipelined_too"
    ):
        metafunc.parametrize(
            "mail_server", [False, True], indirect=True, ids=["step-by-step", "pipelined"]
        )


def pytest_collection_modifyitems(config, items) -> None:
    deselected = []
    for item in items:
        engine = getattr(item, "callspec", None) and item.callspec.params.get("engine")
        if engine == "postgresql" and item.get_closest_marker("sqlite_only"):
            deselected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [i for i in items if i not in deselected]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if POSTGRES_URL:
        counts = {engine: {} for engine in ENGINES}
        for outcome in ("passed", "failed", "error", "skipped"):
            for report in terminalreporter.stats.get(outcome, []):
                engine = _engine_of(report.nodeid)
                if engine and (outcome != "passed" or report.when == "call"):
                    counts[engine][outcome] = counts[engine].get(outcome, 0) + 1
        said = "; ".join(
            f"{engine}: " + ", ".join(f"{n} {o}" for o, n in c.items())
            for engine, c in counts.items()
        )
        terminalreporter.write_line(
            f"PostgreSQL: store tests ran on both engines ({said}) against {_safe(POSTGRES_URL)}"
        )
    else:
        terminalreporter.write_line(
            "PostgreSQL: skipped, the store tests ran on SQLite only "
            "(set DIGEST_TEST_POSTGRES_URL, or run .ci/run, to run them "
            "on PostgreSQL too)",
            yellow=True,
            bold=True,
        )


def _engine_of(nodeid: str) -> str | None:
    found = re.search(r"[\[-](sqlite|postgresql)(?=[\]-])", nodeid)
    return found.group(1) if found else None


def _safe(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


# Every connection the suite makes goes to loopback: a test that would reach another machine
# fails instead.
socket.socket.connect = loopback_only(socket.socket.connect)  # type: ignore[method-assign]
socket.socket.connect_ex = loopback_only(socket.socket.connect_ex)  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("DIGEST_"):
            monkeypatch.delenv(name)
    # Settings read .env from the working directory: run every test from its own folder.
    monkeypatch.chdir(tmp_path)
    set_clock(None)  # a DIGEST_NOW a test set moves the clock of that test only
    yield
    set_clock(None)


class _PostgresDatabases:
    """Creates and drops the session's PostgreSQL test databases."""

    def __init__(self, url: str):
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        self.url = make_url(url).set(drivername="postgresql+psycopg")
        self.admin = create_engine(self.url, isolation_level="AUTOCOMMIT")
        self.names = (f"{_PREFIX}{os.getpid()}_{n}" for n in itertools.count())
        self.template = f"{_PREFIX}{os.getpid()}_template"

    def _sql(self, statement: str) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(statement)

    def url_of(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def start(self) -> None:
        from digest.store import open_store

        self._drop_stale()
        self._sql(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
        self._sql(f'CREATE DATABASE "{self.template}"')
        open_store(self.url_of(self.template)).close()  # migrated once, copied per test

    def _drop_stale(self) -> None:
        with self.admin.connect() as conn:
            names = (
                conn.exec_driver_sql(
                    f"SELECT datname FROM pg_database WHERE datname LIKE '{_PREFIX}%%'"
                )
                .scalars()
                .all()
            )
        for name in names:
            pid = int(m.group(1)) if (m := re.match(rf"{_PREFIX}(\d+)_", name)) else 0
            if pid != os.getpid() and not _alive(pid):
                self.drop(name)

    def create(self, template: str | None = None) -> str:
        """A new database: a copy of the migrated template, or of ``template``."""
        name = next(self.names)
        self._sql(f'CREATE DATABASE "{name}" TEMPLATE "{template or self.template}"')
        return name

    def drop(self, name: str) -> None:
        """Drop a test database. An autovacuum worker (a superuser's process, which this role
        may not terminate) can hold a fresh database for a moment: poll with a deadline, and
        leave the rest to the next session's sweep of stale databases."""
        from sqlalchemy.exc import DBAPIError

        deadline = time.monotonic() + 5
        while True:
            try:
                self._sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except DBAPIError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.1)

    def stop(self) -> None:
        self.drop(self.template)
        self.admin.dispose()


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def postgres() -> Iterator[_PostgresDatabases]:
    """The PostgreSQL server of DIGEST_TEST_POSTGRES_URL (skips the test without one)."""
    if not POSTGRES_URL:
        pytest.skip("set DIGEST_TEST_POSTGRES_URL to run it")
    databases = _PostgresDatabases(POSTGRES_URL)
    databases.start()
    yield databases
    databases.stop()


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    """The database engine the test runs on: "sqlite" or "postgresql"."""
    return request.param


@pytest.fixture
def make_db_url(engine, tmp_path, request) -> Iterator[Callable[[str], str]]:
    """A function giving a fresh, empty database URL on the test's engine; ``name`` is the
    SQLite file's name in the test's folder (PostgreSQL: a new database each call)."""
    if engine == "sqlite":
        yield lambda name="digest.db": f"sqlite:///{tmp_path / name}"
        return
    databases: _PostgresDatabases = request.getfixturevalue("postgres")
    created: list[str] = []

    def make(name: str = "digest.db") -> str:
        created.append(databases.create())
        return databases.url_of(created[-1])

    yield make
    for name in created:
        databases.drop(name)


@pytest.fixture
def db_url(make_db_url) -> str:
    return make_db_url("digest.db")


@pytest.fixture
def store(db_url):
    from digest.store import open_store

    st = open_store(db_url)
    yield st
    st.close()


@pytest.fixture
def corpus() -> Path:
    """The shared corpus (``../shared/corpus``, or the folder DIGEST_TEST_CORPUS names). When
    it is missing the test is skipped, saying where it was looked for; under CI (``CI`` set)
    it fails instead, so a run that should cover the corpus cannot pass without it."""
    if not CORPUS.is_dir():
        reason = (
            f"no corpus at {CORPUS} (clone it beside the repository as ../shared/corpus "
            "or set DIGEST_TEST_CORPUS)"
        )
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{reason}; CI is set, so the corpus tests must run")
        pytest.skip(reason)
    return CORPUS


@pytest.fixture
def newsletter():
    from digest.config import load_newsletter

    return load_newsletter(ROOT / "digest.toml")


@pytest.fixture
def lst(newsletter):
    """The sample newsletter's "daily" list."""
    return newsletter.get_list("daily")


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A real HTTP server on loopback serving the routes a test adds."""
    with FeedServer() as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless chromium, one per test module (skips the test when there is none)."""
    binary, why = find_chromium()
    if binary is None:
        pytest.skip(why)
    instance = Browser(binary)
    yield instance
    instance.close()


@pytest.fixture
def mail_server(request) -> Iterator[RecordingServer]:
    """A real SMTP server (aiosmtpd) on loopback recording what it receives (offering
    PIPELINING when a ``pipelined_too`` test asks for it)."""
    with smtp_server(pipelining=getattr(request, "param", False)) as server:
        yield server


@pytest.fixture
def sample_env(monkeypatch, tmp_path, db_url) -> Path:
    """The sample newsletter's settings in the environment, on the test's database, with the
    outbox in the test's folder (which is also the working directory)."""
    set_settings(monkeypatch, sample_settings(db_url, DIGEST_OUTBOX=str(tmp_path / "outbox")))
    return tmp_path


@pytest.fixture
def subscribed(sample_env) -> Path:
    """The sample newsletter's store with the example subscribers, nothing fetched."""
    run("init")
    run("subscribers", "import", str(EXAMPLE_CSV))
    return sample_env


@pytest.fixture
def loaded(sample_env) -> Path:
    """``sample_env`` with the sample feeds fetched and the example subscribers imported."""
    load_sample()
    return sample_env
