"""Agency status callbacks (signed, retried on 5xx, never on 4xx, no private URLs) and the arq path."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from arq.worker import Worker
from sqlmodel import Session, select

from govconnect.agencies.models import Agency
from govconnect.notices.agency_callbacks import (
    CallbackUrlError,
    check_callback_url,
    post_agency_callback,
    signing_secret,
)
from govconnect.notices.fanout import fanout_notice
from govconnect.notices.pipeline_models import Delivery
from govconnect.settings import Settings
from govconnect.worker import open_arq_queue, worker_settings
from tests.factories import make_subscriber
from tests.govconnect.notices.fakes import provider_set
from tests.govconnect.notices.test_pipeline import make_notice


class Receiver:
    """A loopback HTTP endpoint answering scripted statuses and recording what it got."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[tuple[bytes, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append((body, self.headers["X-GovConnect-Signature"]))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver_factory() -> Iterator[Any]:
    made: list[Receiver] = []

    def make(statuses: list[int]) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.server.shutdown()


class RecordingQueue:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def enqueue(self, name: str, **kwargs: Any) -> bool:
        self.calls.append((name, kwargs))
        return True


async def test_callback_signed_retried_on_5xx_not_4xx(
    pipeline_settings: Settings, engine: Any, session: Session, agency: Agency, receiver_factory: Any
) -> None:
    receiver = receiver_factory([503, 400])
    agency.callback_url = receiver.url
    session.add(agency)
    session.commit()
    queue = RecordingQueue()
    ctx = {"settings": pipeline_settings, "engine": engine, "queue": queue}
    events = [{"delivery_id": "d1", "status": "delivered"}]
    assert await post_agency_callback(ctx, agency_id=agency.id, events=events) == "retry:503"
    assert queue.calls[0][0] == "post_agency_callback" and queue.calls[0][1]["attempt"] == 1
    assert queue.calls[0][1]["defer_by"] > 0
    assert await post_agency_callback(ctx, agency_id=agency.id, events=events, attempt=1) == "rejected:400"
    assert len(queue.calls) == 1  # a 4xx is never retried
    body, signature = receiver.bodies[0]
    assert json.loads(body) == {"events": events}
    t, v1 = (part.split("=", 1)[1] for part in signature.split(","))
    secret = signing_secret(pipeline_settings, agency.id or 0)
    assert v1 == hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()


def test_callback_urls_refused_outside_test_mode(pipeline_settings: Settings) -> None:
    strict = pipeline_settings.model_copy(update={"test_mode": False})
    for url in ("http://example.com/hook", "https://127.0.0.1/hook", "https://10.1.2.3/x", "https://localhost/x"):
        with pytest.raises(CallbackUrlError):
            check_callback_url(url, strict)
    assert check_callback_url("http://127.0.0.1:9/hook", pipeline_settings)  # test mode allows loopback


async def test_notice_through_arq_workers_on_real_redis(
    pipeline_settings: Settings, engine: Any, session: Session, agency: Agency, redis_url: str, queue_name: str
) -> None:
    from tests.govconnect.notices.fakes import ScriptedChannel

    for i in range(30):
        make_subscriber(session, f"1380000{i:04d}", None, channels=["sms"])
    notice = make_notice(session, agency, channels=["sms"])
    settings = pipeline_settings.model_copy(update={"redis_url": redis_url, "queue_name": queue_name})
    queue = await open_arq_queue(settings)
    sms = ScriptedChannel("aliyun_sms", max_batch=10)
    try:
        await queue.enqueue("fanout_notice", notice_id=notice.id)
        # The same job code as production, run by a real arq worker until the queue is empty.
        for _ in range(3):
            options = {
                **worker_settings(settings),
                "handle_signals": False,
                "cron_jobs": [],
                "ctx": {"settings": settings, "providers": provider_set(aliyun_sms=sms)},
            }
            worker = Worker(**options, burst=True)  # type: ignore[arg-type]
            await worker.main()
            await worker.close()
        session.expire_all()
        rows = session.exec(select(Delivery).where(Delivery.notice_id == notice.id)).all()
        assert len(rows) == 30 and {d.status for d in rows} == {"sent"}
        assert sorted(m.reference for m in sms.sent) == sorted(d.id for d in rows)
        assert await fanout_notice({"settings": settings, "engine": engine, "queue": queue}, notice.id) == {
            "created": 0
        }
    finally:
        keys = await queue.redis.keys(f"*{queue_name}*")
        if keys:
            await queue.redis.delete(*keys)
        await queue.redis.aclose()
