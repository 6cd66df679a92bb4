"""Shared fixtures: real SQLite and PostgreSQL databases, real Redis, a test app.

Every database test is parametrised over both backends (`db_backend`). PostgreSQL gets a fresh
database per test session (so concurrent runs do not collide); Redis tests use a unique queue
name and key prefix per session.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis as redis_lib
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, SQLModel

from govconnect.db import make_engine, upgrade
from govconnect.model_registry import import_all_models
from govconnect.settings import Settings

PG_ADMIN_URL = os.environ.get("GOVCONNECT_TEST_PG_ADMIN", "postgresql://127.0.0.1:5432/test")
REDIS_URL = os.environ.get("GOVCONNECT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:10]
# Settings refuse to load without a secret (every command does); tests that check the refusal unset it.
os.environ.setdefault("GOVCONNECT_SECRET_KEY", "test-only-secret-key-0123456789")


def _pg_admin_conninfo() -> str:
    return PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session, dropped afterwards."""
    name = f"gc_test_{RUN_ID}"
    try:
        admin = psycopg.connect(_pg_admin_conninfo(), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # pragma: no cover - CI starts PostgreSQL
        pytest.fail(f"PostgreSQL is required for the database tests: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    base = _pg_admin_conninfo().rsplit("/", 1)[0]
    url = f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    upgrade(url)
    try:
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite database file for this test session."""
    path = tmp_path_factory.mktemp("sqlite") / "govconnect.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def _engines(request: pytest.FixtureRequest) -> Iterator[dict[str, Engine]]:
    engines: dict[str, Engine] = {}
    yield engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    """Which database backend this test runs on."""
    return str(request.param)


def _truncate_all(engine: Engine) -> None:
    import_all_models()
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    # A server or worker a test started may still be finishing a query when it tears down; PostgreSQL
    # then picks the TRUNCATE as a deadlock's victim: try again, the other side has gone by then.
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
                else:
                    for table in tables:
                        conn.execute(text(f'DELETE FROM "{table}"'))
            return
        except OperationalError as exc:
            if attempt == 2 or "deadlock" not in str(exc).lower():
                raise
            time.sleep(0.2)


@pytest.fixture
def db_url(db_backend: str, request: pytest.FixtureRequest) -> str:
    """The URL of the migrated database for the current backend."""
    return str(request.getfixturevalue("pg_url" if db_backend == "postgresql" else "sqlite_url"))


@pytest.fixture
def engine(db_url: str, _engines: dict[str, Engine]) -> Iterator[Engine]:
    """An engine on a clean database (tables emptied after each test)."""
    if db_url not in _engines:
        _engines[db_url] = make_engine(db_url)
    eng = _engines[db_url]
    try:
        yield eng
    finally:
        _truncate_all(eng)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the clean database."""
    with Session(engine, expire_on_commit=False) as s:
        yield s


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis the tests use; fails loudly when it is down."""
    client = redis_lib.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis_lib.exceptions.ConnectionError as exc:  # pragma: no cover - CI starts Redis
        pytest.fail(f"Redis is required for the queue tests: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def queue_name() -> str:
    """A queue name unique to this test."""
    return f"gc-test:{RUN_ID}:{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings for an embedded-mode app on the current backend."""
    return Settings(
        database_url=db_url,
        data_dir=tmp_path,
        secret_key="test-secret-key-0123456789",  # noqa: S106
        test_mode=True,
        redis_url="",
        metrics_token="test-metrics-token",  # noqa: S106
        # Tests drive many pages from one address; the limiter's own tests set a small limit.
        anonymous_rate_limit="100000/minute",
        # arq workers started by tests serve no metrics port (tests of it pick an ephemeral one).
        monitoring={"worker_metrics_port": 0},
    )


METRICS_AUTH = {"Authorization": "Bearer test-metrics-token"}
