"""Fixtures for the notice pipeline: an embedded app with scripted providers, a job context."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.app import create_app
from govconnect.jobs import load_job_modules
from govconnect.settings import Settings
from govconnect.worker import InProcessQueue
from tests.factories import make_agency, make_categories, make_key
from tests.govconnect.notices.fakes import ScriptedChannel, provider_set

load_job_modules()
ALL_SCOPES = ["notices:send", "notices:read"]


@pytest.fixture
def fake_providers() -> dict[str, ScriptedChannel]:
    return {
        name: ScriptedChannel(name, max_batch=1 if name in ("wechat_mp", "aliyun_voice", "weibo") else 100)
        for name in ("aliyun_sms", "cmpp", "aliyun_voice", "wechat_mp", "wecom", "weibo")
    }


@pytest.fixture
def pipeline_settings(settings: Settings) -> Settings:
    notices = settings.notices.model_copy(update={"retry_base_seconds": 0.01, "retry_max_seconds": 0.05})
    return settings.model_copy(update={"notices": notices})


@pytest.fixture
def app_client(
    pipeline_settings: Settings, engine: Engine, fake_providers: dict[str, ScriptedChannel]
) -> Iterator[TestClient]:
    app = create_app(pipeline_settings, engine=engine)
    with TestClient(app) as client:
        app.state.queue.ctx["providers"] = provider_set(**fake_providers)
        yield client


@pytest.fixture
def agency(session: Session) -> Agency:
    make_categories(session)
    return make_agency(session, code="qz-yjj")


@pytest.fixture
def auth(session: Session, agency: Agency) -> dict[str, str]:
    issued = make_key(session, agency, ALL_SCOPES)
    return {"Authorization": f"Bearer {issued.key}"}


@pytest.fixture
async def ctx(pipeline_settings: Settings, engine: Engine, fake_providers: dict[str, ScriptedChannel]) -> Any:
    """A job context with an in-process queue that is NOT started: tests drive jobs step by step."""
    context: dict[str, Any] = {"settings": pipeline_settings, "engine": engine}
    queue = InProcessQueue(context)
    context["providers"] = provider_set(**fake_providers)
    yield context
    await queue.stop()


async def drain(ctx: dict[str, Any], rounds: int = 50) -> None:
    """Start the in-process queue and wait until it is idle (short deferred retries included)."""
    queue: InProcessQueue = ctx["queue"]
    if not queue._workers:
        queue.start()
    loop = asyncio.get_running_loop()
    for _ in range(rounds):
        await queue.join()
        await asyncio.sleep(0.01)  # timers popped in this loop iteration run their callbacks
        # A deferred job stays in `_timers` until its timer fires; long deferrals are ignored.
        pending = [h for h in queue._timers.values() if h.when() < loop.time() + 1.5]
        if not pending and queue._queue._unfinished_tasks == 0:  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.05)


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    """Poll until predicate() is true (for work running on the app's loop)."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


@pytest.fixture
def live_server(pipeline_settings: Settings, engine: Engine) -> Iterator[str]:
    """The app served by uvicorn on an ephemeral loopback port (real HTTP, real concurrency)."""
    import threading
    import time

    import uvicorn

    app = create_app(pipeline_settings, engine=engine)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
