"""Shared fixtures: real RabbitMQ, real PostgreSQL or SQLite, real local servers.

Services that are missing skip their tests locally; with MSGD_REQUIRE_SERVICES=1
(CI) a missing service is a failure instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    PG_DSN,
    RABBIT_URL,
    Gateway,
    Pipeline,
    close_opened_stages,
    msgd,
    pg_reachable,
    rabbit_reachable,
    stage_env,
)

REQUIRE = os.environ.get("MSGD_REQUIRE_SERVICES") == "1"
STORE_URL = pytest.StashKey[str]()
TEST_DB = os.environ.get("MSGD_TEST_DATABASE", "postgres")


def need(available: bool, what: str) -> None:
    if available:
        return
    if REQUIRE:
        pytest.fail(f"{what} is required (MSGD_REQUIRE_SERVICES=1) but not reachable")
    pytest.skip(f"{what} not reachable")


@pytest.fixture
def promtool() -> str:
    """Prometheus' own checker (make system-deps installs it)."""
    path = shutil.which("promtool")
    need(path is not None, "promtool (Debian package prometheus: make system-deps)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def rabbit_url() -> str:
    need(rabbit_reachable(), f"RabbitMQ at {RABBIT_URL}")
    return RABBIT_URL


@pytest.fixture
def namespace(rabbit_url: str) -> Iterator[str]:
    """A private set of exchanges and queues for one test; deleted afterwards."""
    ns = f"t{uuid.uuid4().hex[:10]}"
    yield ns
    from tests.support import delete_namespace

    delete_namespace(rabbit_url, ns)


def _create_pg_database(name: str) -> str:
    import psycopg

    with psycopg.connect(PG_DSN + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def _drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_DSN + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _decide_store_url(tmp: Path) -> str:
    """One database per test process, chosen before any test imports Django models."""
    if TEST_DB == "sqlite":
        return f"sqlite:///{tmp / 'msgd.sqlite3'}"
    if not pg_reachable():
        if REQUIRE:
            raise pytest.UsageError("PostgreSQL is required (MSGD_REQUIRE_SERVICES=1) but not reachable")
        return ""
    return _create_pg_database(f"msgd_test_{os.getpid()}")


def pytest_configure(config: pytest.Config) -> None:
    import tempfile

    from msgd import store

    tmp = Path(tempfile.mkdtemp(prefix="msgd-test-store-"))
    # Tests read English unless they ask for Russian (a developer's LANG=ru_RU must not change that).
    os.environ.setdefault("MSGD_LANGUAGE", "en")
    url = _decide_store_url(tmp)
    config.stash[STORE_URL] = url
    # Django is configured for the whole process: rendering needs it even without a database.
    store.setup(url or f"sqlite:///{tmp / 'no-postgres.sqlite3'}")


def pytest_unconfigure(config: pytest.Config) -> None:
    url = config.stash.get(STORE_URL, "")
    if url.startswith("postgresql://"):
        from django.db import connections

        connections.close_all()
        _drop_pg_database(url.rsplit("/", 1)[1])


def pytest_report_header(config: pytest.Config) -> str:
    url = config.stash.get(STORE_URL, "")
    return f"msgd store under test: {url or 'none (PostgreSQL not reachable: store tests skip)'}"


@pytest.fixture(scope="session")
def store_url(pytestconfig: pytest.Config) -> str:
    url = pytestconfig.stash.get(STORE_URL, "")
    need(bool(url), "PostgreSQL at 127.0.0.1:5432")
    return url


@pytest.fixture(scope="session")
def _configured_store(store_url: str) -> str:
    from msgd import store

    store.migrate()
    return store_url


def empty_store() -> None:
    """Delete every row the tests write (messages, settings, operators, users, tokens...)."""
    from django.contrib.auth import get_user_model

    from msgd.store.models import (
        Attempt,
        ChannelSettings,
        Claim,
        DlrPoll,
        Finding,
        GatewayAccount,
        Message,
        Operator,
        PendingReport,
        Revision,
        Template,
    )
    from msgd.web.models import ApiToken, DlrKey

    # Users and tokens too: a test that creates "boss" must not meet another test's "boss".
    for model in (Attempt, Message, Claim, PendingReport, DlrPoll, Finding, GatewayAccount, DlrKey, Template, ChannelSettings,
                  Operator, Revision, ApiToken, get_user_model()):
        model.objects.all().delete()


@pytest.fixture
def db(_configured_store: str) -> Iterator[str]:
    """An empty store for each test."""
    empty_store()
    yield _configured_store


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for stages that run as separate processes."""
    need(pg_reachable(), "PostgreSQL at 127.0.0.1:5432")
    name = f"msgd_e2e_{uuid.uuid4().hex[:10]}"
    url = _create_pg_database(name)
    yield url
    _drop_pg_database(name)


@pytest.fixture(scope="session")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (TLS servers in tests): (cert, key)."""
    import subprocess

    folder = tmp_path_factory.mktemp("tls")
    key, crt = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )
    return crt, key


@pytest.fixture(autouse=True)
def _close_sender_stages() -> Iterator[None]:
    """Sender stages a test built with tests.support.opened are closed after it (and after its
    gateway, whose held requests are released first)."""
    yield
    close_opened_stages()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    """A real local HTTP server playing an SMS gateway."""
    gw = Gateway().start()
    yield gw
    gw.stop()


@pytest.fixture
def pipeline(db: str, rabbit_url: str, namespace: str, tmp_path: Path) -> Iterator[Pipeline]:
    """Stages as separate processes on RabbitMQ and the store under test; start them with .start()."""
    env = stage_env(MSGD_BROKER_URL=rabbit_url, MSGD_NAMESPACE=namespace, MSGD_DATABASE_URL=db,
                    MSGD_VAR_DIR=str(tmp_path / "var"))
    msgd("setup", env=env)  # at deployment, before billing publishes: exchanges and queues exist
    p = Pipeline(env, tmp_path)
    yield p
    p.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the store runs again on SQLite (make test: -m store)."""
    for item in items:
        if "db" in getattr(item, "fixturenames", ()) or "_configured_store" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.store)
