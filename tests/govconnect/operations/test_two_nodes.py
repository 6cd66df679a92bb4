"""Two `serve` processes with their own data dirs and two arq workers on one PostgreSQL and Redis.

Limits that used to be counted per process hold for the deployment: Weibo's posts an hour,
the voice per-callee window, and the per-key API rate limit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlmodel import Session, select

from channels.sandbox import SandboxState, create_sandbox_app
from channels.sandbox.runner import bind_loopback, run_in_thread
from govconnect.db import make_engine, upgrade
from govconnect.notices.pipeline_models import Delivery
from govconnect.providers.sandbox import gateway_env, sandbox_config
from govconnect.settings import Settings
from tests.conftest import _pg_admin_conninfo
from tests.factories import make_agency, make_categories, make_key, make_subscriber

SECRET = "two-node-secret-0123456789"


@pytest.fixture
def shared_pg() -> Iterator[str]:
    name = f"gc_nodes_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(_pg_admin_conninfo(), autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    base = _pg_admin_conninfo().rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    url = f"{base}/{name}"
    upgrade(url)
    try:
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def free_port() -> int:
    sock = bind_loopback()
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def wait_for(check: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_limits_hold_across_two_serve_and_two_worker_processes(
    shared_pg: str, redis_url: str, queue_name: str, tmp_path: Path
) -> None:
    ports = [free_port(), free_port()]
    settings = Settings(database_url=shared_pg, secret_key=SECRET, data_dir=tmp_path)
    config = sandbox_config(settings, f"http://127.0.0.1:{ports[0]}")
    sandbox = run_in_thread(create_sandbox_app(config, SandboxState(config)))
    env = {
        **os.environ,
        # No CMPP link here: SMS is not part of this test.
        **{k: v for k, v in gateway_env(sandbox.url, config).items() if not k.startswith("GOVCONNECT_CMPP__")},
        "GOVCONNECT_DATABASE_URL": shared_pg,
        "GOVCONNECT_REDIS_URL": redis_url,
        "GOVCONNECT_QUEUE_NAME": queue_name,
        "GOVCONNECT_SECRET_KEY": SECRET,
        "GOVCONNECT_TEST_MODE": "true",
        "GOVCONNECT_NOTICES__SMS_PROVIDERS": '["aliyun_sms"]',
        "GOVCONNECT_ALIYUN_VOICE__SHOW_NUMBER": "057000000",
        "GOVCONNECT_ALIYUN_VOICE__TTS_CODE": "TTS_000000",
        "GOVCONNECT_WEIBO__POSTS_PER_HOUR": "2",
        "GOVCONNECT_API_RATE_LIMIT": "8/minute",
        "GOVCONNECT_MONITORING__WORKER_METRICS_PORT": "0",
    }
    engine = make_engine(shared_pg)
    with Session(engine) as session:
        make_categories(session)
        agency = make_agency(session, code="qz-yjj")
        key = make_key(session, agency, ["notices:send", "notices:read"]).key
        make_subscriber(session, "13700000011", None, channels=["voice"])
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for i, port in enumerate(ports):
            node_env = {**env, "GOVCONNECT_DATA_DIR": str(tmp_path / f"node{i}")}
            processes.append(
                subprocess.Popen(  # noqa: S603
                    [sys.executable, "-m", "govconnect", "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env=node_env,
                    stdout=subprocess.DEVNULL,
                    stderr=(tmp_path / f"log-{len(processes)}.txt").open("wb"),
                )
            )
            processes.append(
                subprocess.Popen(  # noqa: S603
                    [sys.executable, "-m", "govconnect", "worker"],
                    env=node_env,
                    stdout=subprocess.DEVNULL,
                    stderr=(tmp_path / f"log-{len(processes)}.txt").open("wb"),
                )
            )
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url in urls:

            def ready(u: str = url) -> bool:
                assert all(p.poll() is None for p in processes), "a process exited; see log-*.txt in tmp_path"
                return httpx.get(f"{u}/readyz", timeout=2).status_code == 200

            wait_for(ready, 120, f"{url} ready")
        auth = {"Authorization": f"Bearer {key}"}

        def post(i: int, channels: list[str]) -> httpx.Response:
            body = {
                "title": f"公告{i}",
                "body": "测试通知内容。",
                "category": "yjyj",
                "urgency": "urgent",
                "channels": channels,
                "audience": {"subscribers": {"categories": ["yjyj"]}},
            }
            return httpx.post(f"{urls[i % 2]}/api/v1/notices", json=body, headers=auth, timeout=10)

        # Four Weibo posts through both nodes: the account allows two an hour, for the deployment.
        weibo_ids = [post(i, ["weibo"]).json()["id"] for i in range(4)]
        # Two voice notices to one callee through both nodes: one call a minute per callee.
        voice_ids = [post(i, ["voice"]).json()["id"] for i in range(2)]

        def settled() -> bool:
            with Session(engine) as s:
                rows = s.exec(select(Delivery).where(Delivery.notice_id.in_(weibo_ids + voice_ids))).all()  # type: ignore[attr-defined]
            weibo = [d for d in rows if d.channel == "weibo"]
            voice = [d for d in rows if d.channel == "voice"]
            return (
                len(weibo) == 4
                and sum(d.status == "sent" for d in weibo) == 2
                and sum(d.error_code == "rate_limit_local" for d in weibo) == 2
                and len(voice) == 2
                and sorted((d.status.replace("delivered", "sent"), d.error_code or "") for d in voice)
                == [("queued", "isv.BUSINESS_LIMIT_CONTROL"), ("sent", "")]
            )

        wait_for(settled, 120, "deliveries settled")
        counts = httpx.get(f"{sandbox.url}/_sandbox/counts", timeout=5).json()
        assert counts["requests"].get("weibo", 0) == 2  # never asked the provider for a third
        with Session(engine) as s:
            voice = s.exec(select(Delivery).where(Delivery.channel == "voice")).all()
        # The second call to the same person waits for the minute to pass (a limit on when, not whether).
        [waiting] = [d for d in voice if d.status == "queued"]
        assert waiting.next_attempt_at is not None and waiting.updated_at is not None
        assert (waiting.next_attempt_at - waiting.updated_at).total_seconds() >= 50
        assert counts["requests"].get("aliyun_voice", 0) == 1

        # The per-key API rate limit counts requests to either node (8 a minute, 6 used above).
        codes = [httpx.get(f"{urls[i % 2]}/api/v1/agencies/me", headers=auth, timeout=10).status_code for i in range(4)]
        assert codes == [200, 200, 429, 429]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        sandbox.stop()
        engine.dispose()
