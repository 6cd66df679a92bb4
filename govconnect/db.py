"""Database engine, sessions and migrations; the same code runs on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlmodel import Session, create_engine

from govconnect.settings import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def prepare_sqlite_file(path: Path) -> None:
    """Create the SQLite file's directory (0700) and the file itself (0600) before SQLite opens it.

    SQLite gives its -wal and -shm files the database file's permissions, so all three stay private;
    creating the file with its mode leaves no moment in which it is readable by others.
    """
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with sane defaults for SQLite (WAL, FK on, busy timeout) or PostgreSQL."""
    # Statement parameters carry phone numbers and names: errors and logs never show them.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            prepare_sqlite_file(Path(path))
            # SQLite connections are cheap: size the pool above FastAPI's 40 worker threads so that
            # requests queue on SQLite's own write lock, never on the pool's 30-second checkout timeout.
            kwargs.setdefault("pool_size", 20)
            kwargs.setdefault("max_overflow", 40)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    # A request keeps its connection from authentication to its last query, across several hops
    # through FastAPI's 40 worker threads. With fewer connections than threads, threads waiting
    # for a connection could hold every thread a connection holder needed to finish: 50
    # concurrent retries of one notice stalled on the 30-second checkout timeout. Connections
    # beyond the 10 kept are opened only under such load and closed after it.
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 50)
    idle_seconds = kwargs.pop("ping_after_idle_seconds", PING_AFTER_IDLE_SECONDS)
    engine = create_engine(url, **kwargs)
    _ping_after_idle(engine, idle_seconds)
    return engine


# A pooled connection is checked before use only when it has been idle this long: one that was
# in use a moment ago is alive, and `pool_pre_ping` (a round trip per checkout) was a twentieth
# of a worker's CPU during a broadcast.
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_after_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping connections idle longer than `idle_seconds` at checkout; a dead one is replaced."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("connection lost while idle in the pool") from exc


def engine_from_settings(settings: Settings, **kwargs: Any) -> Engine:
    """The engine for the configured database (`pool_timeout=` and other engine options may be given)."""
    return make_engine(settings.effective_database_url, **kwargs)


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our packaged migrations and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            prepare_sqlite_file(Path(path))
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    """The newest migration this code ships."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    with engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:  # noqa: BLE001 - table missing means "not migrated"
            return None


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def ping(engine: Engine) -> None:
    """Raise when the database cannot answer a trivial query."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
