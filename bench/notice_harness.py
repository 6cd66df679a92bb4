"""Shared set-up for bench/fanout.py and bench/chaos.py: real PostgreSQL, Redis, sandbox, API and workers.

Everything runs as separate processes, like production: the provider sandbox (`govconnect sandbox`),
the API (`govconnect serve`) and N arq workers (`govconnect worker`), or the API alone in embedded
mode. A private PostgreSQL database is created and dropped; Redis is the shared one (unique queue
name) or a private `redis-server` on its own port (so chaos can restart it).
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlmodel import select  # noqa: E402

from govconnect.agencies.service import create_agency, create_api_key  # noqa: E402
from govconnect.db import make_engine, session_scope, upgrade  # noqa: E402
from govconnect.notices.models import Category  # noqa: E402
from govconnect.providers.sandbox import gateway_env, sandbox_config  # noqa: E402
from govconnect.settings import Settings  # noqa: E402

PG_ADMIN = os.environ.get("GOVCONNECT_BENCH_PG_ADMIN", "postgresql://127.0.0.1:5432/test")
SHARED_REDIS = os.environ.get("GOVCONNECT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "bench-secret-key-" + uuid.uuid4().hex
GOVCONNECT = [sys.executable, "-m", "govconnect"]
DAY = "2026-01-01"


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    """Wait until url answers."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@dataclass
class Stack:
    """The running processes and how to reach them."""

    db_url: str
    db_name: str
    redis_url: str
    api_url: str
    sandbox_url: str
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    redis_proc: subprocess.Popen[bytes] | None = None
    redis_dir: str = ""
    redis_port: int = 0
    peak_rss: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    logdir: str = ""

    def start(self, name: str, args: list[str], extra_env: dict[str, str] | None = None, nice: int = 0) -> None:
        """Start a GovConnect process with the stack's environment (at a lower CPU priority if `nice`)."""
        log = open(Path(self.logdir) / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.procs[name] = subprocess.Popen(  # noqa: S603
            GOVCONNECT + args,
            env={**os.environ, **self.env, **(extra_env or {})},
            stdout=log,
            stderr=log,
            cwd=ROOT,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,  # noqa: PLW1509 - no threads yet here
        )

    def sample_rss(self) -> None:
        """Record each process's peak resident memory (MB)."""
        for name, proc in self.procs.items():
            try:
                process = psutil.Process(proc.pid)
                rss = process.memory_info().rss / 1e6
                times = process.cpu_times()
            except psutil.Error:
                continue
            self.peak_rss[name] = max(self.peak_rss.get(name, 0.0), rss)
            self.cpu_seconds[name] = times.user + times.system

    def kill(self, name: str) -> None:
        """SIGKILL one process (a worker dying mid-batch)."""
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()

    def restart_redis(self) -> None:
        """Kill the private Redis (no persistence: everything queued is lost) and start it again."""
        assert self.redis_proc is not None, "only a private Redis is restarted"
        self.redis_proc.send_signal(signal.SIGKILL)
        self.redis_proc.wait()
        self.redis_proc = _start_redis(self.redis_port, self.redis_dir)

    def stop(self) -> None:
        """Stop every process and drop the database."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.redis_proc is not None:
            self.redis_proc.kill()
            self.redis_proc.wait()
            shutil.rmtree(self.redis_dir, ignore_errors=True)
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')


def _start_redis(port: int, directory: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(  # noqa: S603
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            directory,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def build_stack(
    workers: int,
    embedded: bool,
    private_redis: bool,
    report_delay: float = 0.2,
    pipeline: dict[str, str] | None = None,
    nice: int = 0,
    callbacks_process: bool = False,
) -> Stack:
    """Create the database and start sandbox, API and workers."""
    db_name = f"gc_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db_name}"')
    db_url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{db_name}"
    upgrade(db_url)
    redis_proc = None
    redis_dir = ""
    redis_port = 0
    redis_url = SHARED_REDIS
    if private_redis:
        redis_port = free_port()
        redis_dir = tempfile.mkdtemp(prefix="gc-bench-redis-")
        redis_proc = _start_redis(redis_port, redis_dir)
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
    api_port, sandbox_port = free_port(), free_port()
    api_url, sandbox_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sandbox_port}"
    settings = Settings(secret_key=SECRET)  # type: ignore[arg-type]
    env = {
        "GOVCONNECT_DATABASE_URL": db_url,
        "GOVCONNECT_REDIS_URL": "" if embedded else redis_url,
        "GOVCONNECT_SECRET_KEY": SECRET,
        "GOVCONNECT_QUEUE_NAME": f"gc-bench:{uuid.uuid4().hex[:8]}",
        "GOVCONNECT_PUBLIC_BASE_URL": api_url,
        "GOVCONNECT_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "GOVCONNECT_API_RATE_LIMIT": "100000/minute",
        "GOVCONNECT_WECHAT_MP__TEMPLATE_ID": "sandbox-template",
        "GOVCONNECT_DATA_DIR": tempfile.mkdtemp(prefix="gc-bench-data-"),
        **{k: v for k, v in gateway_env(sandbox_url, sandbox_config(settings, api_url)).items() if v != ""},
        **(pipeline or {}),
    }
    stack = Stack(db_url, db_name, redis_url, api_url, sandbox_url, env, redis_proc=redis_proc)
    stack.redis_dir, stack.redis_port = redis_dir, redis_port
    stack.logdir = tempfile.mkdtemp(prefix="gc-bench-logs-")
    try:
        _start_processes(stack, api_port, sandbox_port, workers, embedded, report_delay, nice, callbacks_process)
    except BaseException:
        stack.stop()
        raise
    return stack


def _start_processes(
    stack: Stack,
    api_port: int,
    sandbox_port: int,
    workers: int,
    embedded: bool,
    report_delay: float,
    nice: int,
    callbacks_process: bool,
) -> None:
    api_url, sandbox_url = stack.api_url, stack.sandbox_url
    # Provider callbacks go to the API, or to a second `serve` process of their own (what a
    # reverse proxy routing /callbacks/ to its own pool would do in production).
    callbacks_url = api_url
    if callbacks_process and not embedded:
        callbacks_port = free_port()
        callbacks_url = f"http://127.0.0.1:{callbacks_port}"
        stack.start("callbacks", ["serve", "--port", str(callbacks_port)], nice=nice)
    stack.start(
        "sandbox",
        [
            "sandbox",
            "--port",
            str(sandbox_port),
            "--callback-base-url",
            callbacks_url,
            "--report-delay",
            str(report_delay),
        ],
        nice=nice,
    )
    stack.start("api", ["serve", "--port", str(api_port)])
    for i in range(0 if embedded else workers):
        stack.start(f"worker{i + 1}", ["worker"], nice=nice)
    wait_http(f"{sandbox_url}/_sandbox")
    wait_http(f"{api_url}/healthz")
    if callbacks_url != api_url:
        wait_http(f"{callbacks_url}/healthz")


def seed(stack: Stack, subscribers: int) -> str:
    """Categories, an agency with a key, and N subscribers (SMS + WeChat) via COPY; returns the API key."""
    engine = make_engine(stack.db_url)
    with session_scope(engine) as session:
        # The API seeds the standard categories at start-up; add ours only if it has not yet.
        if session.exec(select(Category).where(Category.code == "yjyj")).first() is None:
            session.add(Category(code="yjyj", name="应急预警"))
        agency = create_agency(session, "衢州市应急管理局", "qz-yjj", "衢州市")
        agency.daily_limit = 10**8
        key = create_api_key(session, agency, ["notices:send", "notices:read"]).key
    engine.dispose()
    conninfo = stack.db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        buf = io.StringIO()
        for i in range(subscribers):
            phone, openid = f"1{3 + i % 7}{i:09d}", f"oBench{i:08d}"
            buf.write(f'{i + 1}\t{phone}\t{openid}\t用户{i}\t["sms", "wechat"]\tactive\timport\t{DAY}\t{DAY}\n')
        buf.seek(0)
        with cur.copy(
            "COPY subscriber (id, phone, wechat_openid, name, channels, status, source, created_at, updated_at)"
            " FROM STDIN"
        ) as copy:
            while chunk := buf.read(1 << 20):
                copy.write(chunk)
        cur.execute("INSERT INTO subscriber_category (subscriber_id, category) SELECT id, 'yjyj' FROM subscriber")
        cur.execute("SELECT setval(pg_get_serial_sequence('subscriber','id'), (SELECT max(id) FROM subscriber))")
        conn.commit()
        # A subscriber table in service has planner statistics; one just filled by COPY has none
        # until autovacuum comes by, and without them each audience page read every subscriber.
        cur.execute("ANALYZE subscriber, subscriber_category")
    return key


def delivery_counts(stack: Stack, notice_id: str) -> dict[str, int]:
    """Deliveries of the notice by status."""
    conninfo = stack.db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute("SELECT status, count(*) FROM delivery WHERE notice_id = %s GROUP BY status", (notice_id,))
        return {status: int(n) for status, n in rows}


def post_notice(stack: Stack, key: str, idem: str, channels: tuple[str, ...] = ("sms", "wechat")) -> dict[str, Any]:
    """Broadcast the benchmark notice (urgent, SMS + WeChat by default, everyone in 应急预警)."""
    body = {
        "title": "防汛紧急预警",
        "body": "((name))您好：今夜有大暴雨，请远离河道和低洼地带。",
        "category": "yjyj",
        "urgency": "urgent",
        "channels": list(channels),
        "audience": {"subscribers": {"categories": ["yjyj"]}},
    }
    r = httpx.post(
        f"{stack.api_url}/api/v1/notices",
        json=body,
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": idem},
        timeout=60,
    )
    r.raise_for_status()
    return r.json()  # type: ignore[no-any-return]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]
