"""Agency status callbacks (signed, retried on 5xx, never on 4xx, no private URLs) and the arq path."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from arq.worker import Worker
from sqlalchemy import update
from sqlmodel import Session, select

from channels.base import Receipt
from govconnect.agencies.models import Agency
from govconnect.clock import utcnow
from govconnect.notices.agency_callbacks import (
    CallbackUrlError,
    _store,
    check_callback_url,
    post_agency_callback,
    signing_secret,
)
from govconnect.notices.fanout import fanout_notice
from govconnect.notices.pipeline_models import AgencyCallback, Delivery
from govconnect.notices.providers import _apply_receipt
from govconnect.notices.sweeper import sweep
from govconnect.settings import Settings
from govconnect.worker import open_arq_queue, worker_settings
from tests.factories import make_key, make_subscriber
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


def _owe(engine: Any, agency: Agency, events: list[dict[str, Any]], moment: datetime) -> int:
    [(callback_id, _attempts)] = _store(engine, {agency.id or 0: events}, moment)
    return callback_id


def _row(session: Session, callback_id: int) -> AgencyCallback:
    session.expire_all()
    row = session.get(AgencyCallback, callback_id)
    assert row is not None
    return row


async def test_callback_signed_retried_on_5xx_not_4xx(
    pipeline_settings: Settings, engine: Any, session: Session, agency: Agency, receiver_factory: Any
) -> None:
    receiver = receiver_factory([503, 400])
    agency.callback_url = receiver.url
    session.add(agency)
    session.commit()
    queue = RecordingQueue()
    clock = [utcnow()]
    ctx = {"settings": pipeline_settings, "engine": engine, "queue": queue, "clock": lambda: clock[0]}
    events = [{"delivery_id": "d1", "status": "delivered"}]
    callback_id = _owe(engine, agency, events, clock[0])
    assert await post_agency_callback(ctx, callback_id=callback_id) == "retry:503"
    assert queue.calls[0][0] == "post_agency_callback" and queue.calls[0][1]["defer_by"] == 5.0
    row = _row(session, callback_id)
    assert (row.status, row.attempts, row.last_result) == ("pending", 1, "retry:503")
    assert await post_agency_callback(ctx, callback_id=callback_id) == "not_due"  # a duplicate job does nothing
    clock[0] += timedelta(seconds=6)
    assert await post_agency_callback(ctx, callback_id=callback_id) == "rejected:400"
    assert len(queue.calls) == 1  # a 4xx is never retried
    row = _row(session, callback_id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("rejected", 2, None)
    body, signature = receiver.bodies[0]
    assert json.loads(body) == {"events": events}
    t, v1 = (part.split("=", 1)[1] for part in signature.split(","))
    secret = signing_secret(pipeline_settings, agency.id or 0)
    assert v1 == hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()


async def test_owed_callbacks_outlive_a_lost_queue_and_fail_visibly_after_a_day(
    pipeline_settings: Settings, engine: Any, session: Session, agency: Agency, receiver_factory: Any, app_client: Any
) -> None:
    """The queue forgets (a Redis restart): the sweeper finds the owed rows; after 24 h of 5xx they are failed."""
    receiver = receiver_factory([200] + [503] * 40)
    agency.callback_url = receiver.url
    session.add(agency)
    session.commit()
    clock = [utcnow()]
    lost = RecordingQueue()  # the first try's job is never run
    ctx = {"settings": pipeline_settings, "engine": engine, "queue": lost, "clock": lambda: clock[0]}
    first = _owe(engine, agency, [{"delivery_id": "d1", "status": "delivered"}], clock[0])
    second = _owe(engine, agency, [{"delivery_id": "d2", "status": "failed"}], clock[0])
    swept = RecordingQueue()
    result = await sweep({**ctx, "queue": swept})
    assert result["callbacks"] == 2
    assert sorted(kw["callback_id"] for name, kw in swept.calls if name == "post_agency_callback") == [first, second]
    assert await post_agency_callback(ctx, callback_id=first) == "ok"
    assert _row(session, first).status == "delivered"
    outcome = ""
    for _ in range(40):  # every retry's job is lost too; only the sweeper brings it back
        outcome = await post_agency_callback(ctx, callback_id=second)
        if outcome == "gave_up":
            break
        assert outcome == "retry:503"
        clock[0] = _row(session, second).next_attempt_at  # type: ignore[assignment]
    row = _row(session, second)
    assert outcome == "gave_up" and row.status == "failed" and row.last_result == "gave_up:503"
    assert clock[0] - row.created_at >= timedelta(hours=23)
    admin = {"Authorization": f"Bearer {make_key(session, agency, ['admin']).key}"}
    listed = app_client.get("/api/v1/agencies/me/callbacks?status=failed", headers=admin).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == second
    assert listed["items"][0]["events"] == [{"delivery_id": "d2", "status": "failed"}]


async def test_a_cmpp_report_owes_the_agency_its_status_event(
    ctx: dict[str, Any], session: Session, agency: Agency, receiver_factory: Any
) -> None:
    """CMPP reports arrive with no queue at hand: the event is owed in the database and the sweeper sends it."""
    agency.callback_url = receiver_factory([]).url
    session.add(agency)
    session.commit()
    make_subscriber(session, "13900001111", None, channels=["sms"])
    notice = make_notice(session, agency, channels=["sms"])
    await fanout_notice(ctx, notice.id)
    [delivery] = session.exec(select(Delivery).where(Delivery.notice_id == notice.id)).all()
    session.execute(update(Delivery).where(Delivery.id == delivery.id).values(status="sent", provider="cmpp"))  # type: ignore[arg-type]
    session.commit()
    _apply_receipt(ctx["engine"], Receipt(reference=delivery.id, provider_id=None, delivered=True, provider="cmpp"))
    [owed] = session.exec(select(AgencyCallback)).all()
    assert owed.status == "pending" and [e["delivery_id"] for e in owed.events] == [delivery.id]
    swept = RecordingQueue()
    await sweep({**ctx, "queue": swept})
    assert ("post_agency_callback", owed.id) in [(name, kw.get("callback_id")) for name, kw in swept.calls]


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


def test_registering_a_callback_url_is_audited(app_client: Any, session: Session, agency: Agency) -> None:
    admin = {"Authorization": f"Bearer {make_key(session, agency, ['admin']).key}"}
    r = app_client.put("/api/v1/agencies/me/callback", json={"url": "https://93.184.216.34/hook"}, headers=admin)
    assert r.status_code == 200, r.text
    entries = app_client.get("/api/v1/audit?action=settings_change", headers=admin).json()["items"]
    assert [e["changes"]["callback_url"] for e in entries] == [{"from": None, "to": "https://93.184.216.34/hook"}]
