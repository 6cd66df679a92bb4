"""The queue carries work through real Redis (arq) and through the in-process worker."""

from __future__ import annotations

import asyncio

import pytest
from arq.jobs import Job
from arq.worker import Worker
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from govconnect.app import create_app
from govconnect.jobs import JOBS
from govconnect.settings import Settings
from govconnect.worker import InProcessQueue, open_arq_queue, worker_settings


async def test_arq_round_trip(settings: Settings, redis_url: str, queue_name: str) -> None:
    s = settings.model_copy(update={"redis_url": redis_url, "queue_name": queue_name})
    queue = await open_arq_queue(s)
    try:
        assert await queue.enqueue("ping", job_id=f"{queue_name}:1", value="你好")
        # The same job id is not queued twice.
        assert not await queue.enqueue("ping", job_id=f"{queue_name}:1", value="again")
        worker = Worker(**{**worker_settings(s), "handle_signals": False}, burst=True)  # type: ignore[arg-type]
        await worker.main()
        await worker.close()
        job = Job(f"{queue_name}:1", queue.redis, _queue_name=queue_name)
        assert await job.result(timeout=5) == "你好"
        with pytest.raises(KeyError):
            await queue.enqueue("no_such_job")
    finally:
        await queue.redis.delete(f"arq:result:{queue_name}:1")
        await queue.redis.aclose()


async def test_in_process_queue_runs_and_defers() -> None:
    queue = InProcessQueue({}, concurrency=2)
    queue.start()
    try:
        assert await queue.enqueue("ping", job_id="a", value="一")
        assert not await queue.enqueue("ping", job_id="a", value="dup")
        await queue.enqueue("ping", job_id="b", value="二", defer_by=0.05)
        await queue.join()
        assert queue.results == {"a": "一"}
        await asyncio.sleep(0.15)
        await queue.join()
        assert queue.results == {"a": "一", "b": "二"}
    finally:
        await queue.stop()


def test_app_with_redis_is_ready(settings: Settings, engine: Engine, redis_url: str, queue_name: str) -> None:
    app = create_app(settings.model_copy(update={"redis_url": redis_url, "queue_name": queue_name}), engine=engine)
    with TestClient(app) as client:
        r = client.get("/readyz")
        assert r.status_code == 200
        assert r.json()["checks"] == {"database": "ok", "redis": "ok"}


def test_every_job_is_registered_with_the_worker(settings: Settings, redis_url: str) -> None:
    s = settings.model_copy(update={"redis_url": redis_url})
    registered = {f.name for f in worker_settings(s)["functions"]}
    assert registered == set(JOBS)
    assert "ping" in registered
