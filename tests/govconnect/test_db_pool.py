"""The PostgreSQL pool pings only connections that sat idle, and replaces one that died meanwhile."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from sqlalchemy import text

from govconnect.db import make_engine


def _backend_pid(engine: object) -> int:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_killed_while_idle_is_replaced(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=1, max_overflow=0, ping_after_idle_seconds=0.2)
    try:
        pid = _backend_pid(engine)
        assert _backend_pid(engine) == pid  # reused straight away, no new connection
        admin = pg_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(0.3)  # idle past the threshold: checked at checkout, found dead, replaced
        assert _backend_pid(engine) != pid
    finally:
        engine.dispose()


def test_only_connections_idle_past_the_threshold_are_pinged(pg_url: str, monkeypatch: Any) -> None:
    for idle_seconds, expected_pings in ((60.0, 0), (0.0, 2)):
        engine = make_engine(pg_url, pool_size=1, max_overflow=0, ping_after_idle_seconds=idle_seconds)
        pings: list[object] = []
        real_ping = engine.dialect.do_ping
        monkeypatch.setattr(engine.dialect, "do_ping", lambda conn, real=real_ping: pings.append(conn) or real(conn))
        try:
            for _ in range(3):  # the first checkout opens the connection: nothing to ping
                _backend_pid(engine)
        finally:
            engine.dispose()
        assert len(pings) == expected_pings, idle_seconds
