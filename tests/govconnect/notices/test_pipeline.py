"""Pipeline logic on both databases: fan-out, claims, retries, failover, quiet hours, cancel, sweeper."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from channels.base import OutboundMessage, Receipt, SendResult
from govconnect.agencies.models import Agency
from govconnect.clock import utcnow
from govconnect.jobs import JOBS
from govconnect.notices import receipts as receipts_module
from govconnect.notices.fanout import fanout_notice
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import Delivery, NoticeOutbox
from govconnect.notices.policy import quiet_until
from govconnect.notices.receipts import apply_receipts
from govconnect.notices.sending import _claim, _record, send_deliveries
from govconnect.notices.sweeper import sweep
from tests.factories import make_subscriber
from tests.govconnect.notices.conftest import drain
from tests.govconnect.notices.fakes import ScriptedChannel


def make_notice(session: Session, agency: Agency, **over: Any) -> Notice:
    fields: dict[str, Any] = {
        "agency_id": agency.id,
        "title": "通知",
        "body": "((name))您好，测试通知。",
        "category": "yjyj",
        "urgency": "urgent",
        "channels": ["sms", "wechat"],
        "audience": {"subscribers": {"categories": ["yjyj", "sbyl"]}},
    }
    fields.update(over)
    notice = Notice(**fields)
    session.add(notice)
    session.add(NoticeOutbox(notice_id=notice.id))
    session.commit()
    return notice


def deliveries(session: Session, notice_id: str) -> list[Delivery]:
    session.expire_all()
    return list(session.exec(select(Delivery).where(Delivery.notice_id == notice_id)).all())


async def test_fanout_dedupes_and_reruns_never_double(ctx: dict[str, Any], session: Session, agency: Agency) -> None:
    for i in range(25):
        # Everyone follows both categories: reached twice by the query's categories, once by us.
        make_subscriber(session, f"1380000{i:04d}", f"oid-{i}", categories=["yjyj", "sbyl"], name=f"人{i}")
    make_subscriber(session, "13900000000", None, categories=["sbyl"], channels=["sms"])
    notice = make_notice(session, agency)
    ctx["settings"] = ctx["settings"].model_copy(
        update={"notices": ctx["settings"].notices.model_copy(update={"fanout_page": 7})}
    )
    first = await fanout_notice(ctx, notice.id)
    assert first == {"created": 51}
    rows = deliveries(session, notice.id)
    assert len(rows) == 51
    assert len({(d.channel, d.recipient) for d in rows}) == 51
    # A re-run (the outbox reset, as if the worker died before marking it done) creates nothing new.
    with Session(ctx["engine"]) as s:
        outbox = s.exec(select(NoticeOutbox).where(NoticeOutbox.notice_id == notice.id)).one()
        outbox.done_at = None
        outbox.cursor = ""
        s.add(outbox)
        s.commit()
    assert await fanout_notice(ctx, notice.id) == {"created": 0}
    assert len(deliveries(session, notice.id)) == 51


async def test_claims_are_atomic(ctx: dict[str, Any], session: Session, agency: Agency) -> None:
    for i in range(40):
        make_subscriber(session, f"1370000{i:04d}", None, channels=["sms"])
    notice = make_notice(session, agency, channels=["sms"])
    await fanout_notice(ctx, notice.id)
    ids = [d.id for d in deliveries(session, notice.id)]
    engine: Engine = ctx["engine"]
    results = await asyncio.gather(*(asyncio.to_thread(_claim, engine, ids, utcnow()) for _ in range(6)))
    claimed = [c.id for batch in results for c in batch]
    assert sorted(claimed) == sorted(ids)  # each delivery claimed exactly once across six racing workers


async def test_retry_then_success_and_permanent_failure(
    ctx: dict[str, Any], session: Session, agency: Agency, fake_providers: dict[str, ScriptedChannel]
) -> None:
    make_subscriber(session, "13600000001", None, channels=["sms"])
    make_subscriber(session, "13600000002", None, channels=["sms"])

    def script(message: OutboundMessage, attempt: int) -> SendResult:
        if message.recipient.endswith("2"):
            return SendResult.permanent(message.reference, "isv.MOBILE_NUMBER_ILLEGAL")
        if attempt == 1:
            return SendResult.retryable(message.reference, "503", retry_after=0.05)
        return SendResult.accepted(message.reference, "biz")

    fake_providers["aliyun_sms"].script = script
    notice = make_notice(session, agency, channels=["sms"])
    await fanout_notice(ctx, notice.id)
    await drain(ctx)
    by_phone = {d.recipient: d for d in deliveries(session, notice.id)}
    assert by_phone["13600000001"].status == "sent" and by_phone["13600000001"].attempts == 2
    assert by_phone["13600000002"].status == "failed"
    assert by_phone["13600000002"].attempts == 1  # permanent: never retried
    assert by_phone["13600000002"].error_code == "isv.MOBILE_NUMBER_ILLEGAL"


async def test_sms_fails_over_to_second_provider(
    ctx: dict[str, Any], session: Session, agency: Agency, fake_providers: dict[str, ScriptedChannel]
) -> None:
    make_subscriber(session, "13500000001", None, channels=["sms"])
    fake_providers["aliyun_sms"].script = lambda m, a: SendResult.retryable(m.reference, "500")
    notice = make_notice(session, agency, channels=["sms"])
    await fanout_notice(ctx, notice.id)
    await drain(ctx)
    (delivery,) = deliveries(session, notice.id)
    assert delivery.status == "sent" and delivery.provider == "cmpp"
    assert fake_providers["aliyun_sms"].calls == ctx["settings"].notices.failover_after
    assert [m.reference for m in fake_providers["cmpp"].sent] == [delivery.id]


async def test_deadline_turns_retries_into_failure(
    ctx: dict[str, Any], session: Session, agency: Agency, fake_providers: dict[str, ScriptedChannel]
) -> None:
    make_subscriber(session, None, "oid-x", channels=["wechat"])
    fake_providers["wechat_mp"].script = lambda m, a: SendResult.retryable(m.reference, "45009", retry_after=3600)
    notice = make_notice(session, agency, channels=["wechat"])
    await fanout_notice(ctx, notice.id)
    await drain(ctx)
    (delivery,) = deliveries(session, notice.id)
    assert delivery.status == "queued"  # Retry-After honoured: waiting an hour, not hammering
    assert delivery.next_attempt_at is not None and delivery.next_attempt_at > utcnow() + timedelta(minutes=59)
    with Session(ctx["engine"]) as s:
        d = s.get(Delivery, delivery.id)
        assert d is not None
        d.deadline_at = utcnow() + timedelta(minutes=1)
        d.next_attempt_at = None
        s.add(d)
        s.commit()
    await send_deliveries(ctx, notice.id, "wechat", [delivery.id])
    (delivery,) = deliveries(session, notice.id)
    assert delivery.status == "failed" and delivery.error_code == "deadline_exceeded"


async def test_quiet_hours_defer_normal_sms_but_not_urgent(
    ctx: dict[str, Any], session: Session, agency: Agency, fake_providers: dict[str, ScriptedChannel]
) -> None:
    night = datetime(2026, 6, 1, 23, 30, tzinfo=UTC) - timedelta(hours=8)  # 23:30 in Shanghai
    assert quiet_until(night, "sms", "normal") == datetime(2026, 6, 1, 23, 0, tzinfo=UTC)  # 07:00 Shanghai
    assert quiet_until(night, "sms", "urgent") is None
    assert quiet_until(night, "wechat", "normal") is None
    assert quiet_until(night.replace(hour=4), "voice", "normal") is None  # 12:30 Shanghai
    make_subscriber(session, "13400000001", "oid-q", channels=["sms", "wechat"])
    ctx["clock"] = lambda: night
    normal = make_notice(session, agency, urgency="normal")
    await fanout_notice(ctx, normal.id)
    ids = {d.channel: d.id for d in deliveries(session, normal.id)}
    assert (await send_deliveries(ctx, normal.id, "sms", [ids["sms"]]))["deferred"] == 1
    await send_deliveries(ctx, normal.id, "wechat", [ids["wechat"]])
    by_channel = {d.channel: d for d in deliveries(session, normal.id)}
    assert by_channel["sms"].status == "queued"  # deferred, not dropped
    assert by_channel["sms"].next_attempt_at == datetime(2026, 6, 1, 23, 0, tzinfo=UTC)
    assert by_channel["sms"].held_reason == "quiet_hours"  # says why it waits
    assert by_channel["wechat"].status == "sent" and by_channel["wechat"].held_reason is None
    ctx["clock"] = lambda: datetime(2026, 6, 1, 23, 0, 5, tzinfo=UTC)  # 07:00:05 Shanghai
    await send_deliveries(ctx, normal.id, "sms", [ids["sms"]])
    sms = {d.channel: d for d in deliveries(session, normal.id)}["sms"]
    assert (sms.status, sms.held_reason) == ("sent", None)  # held no longer
    ctx["clock"] = lambda: night
    urgent = make_notice(session, agency, urgency="urgent", channels=["sms"])
    await fanout_notice(ctx, urgent.id)
    (u,) = deliveries(session, urgent.id)
    await send_deliveries(ctx, urgent.id, "sms", [u.id])
    assert deliveries(session, urgent.id)[0].status == "sent"
    assert [m.recipient for m in fake_providers["aliyun_sms"].sent] == ["13400000001", "13400000001"]


async def test_cancel_stops_queued_sends(
    ctx: dict[str, Any], session: Session, agency: Agency, fake_providers: dict[str, ScriptedChannel]
) -> None:
    from govconnect.audit.record import Actor
    from govconnect.notices.service import cancel_notice

    for i in range(5):
        make_subscriber(session, f"1330000000{i}", None, channels=["sms"])
    notice = make_notice(session, agency, channels=["sms"])
    await fanout_notice(ctx, notice.id)
    cancel_notice(session, agency, notice.id, utcnow(), Actor.cli(agency.id))
    await drain(ctx)
    assert {d.status for d in deliveries(session, notice.id)} == {"cancelled"}
    assert fake_providers["aliyun_sms"].sent == []


async def test_receipts_update_ignore_unknown_and_duplicates_and_finish(
    ctx: dict[str, Any], session: Session, agency: Agency
) -> None:
    make_subscriber(session, "13200000001", "oid-r", channels=["sms", "wechat"])
    notice = make_notice(session, agency)
    await fanout_notice(ctx, notice.id)
    await drain(ctx)
    by_channel = {d.channel: d for d in deliveries(session, notice.id)}
    engine = ctx["engine"]
    out = apply_receipts(
        engine,
        [
            Receipt(reference=by_channel["sms"].id, provider_id=None, delivered=True, code="DELIVERED"),
            Receipt(reference=by_channel["sms"].id, provider_id=None, delivered=True, code="DELIVERED"),
            Receipt(reference="0" * 32, provider_id=None, delivered=True),
            Receipt(
                reference=None, provider_id=f"p-{by_channel['wechat'].id}", delivered=False, code="failed:user block"
            ),
        ],
    )
    assert (out.updated, out.duplicates, out.unknown) == (2, 1, 1)
    by_channel = {d.channel: d for d in deliveries(session, notice.id)}
    assert by_channel["sms"].status == "delivered" and by_channel["sms"].receipts == 2
    assert by_channel["wechat"].status == "failed" and by_channel["wechat"].error_code == "failed:user block"
    assert await JOBS["finish_notice"](ctx, notice_id=notice.id) is True
    session.expire_all()
    assert session.get(Notice, notice.id).status == "completed"  # type: ignore[union-attr]


async def test_delivered_receipt_clears_the_error_of_an_earlier_attempt(
    ctx: dict[str, Any], session: Session, agency: Agency, fake_providers: dict[str, ScriptedChannel]
) -> None:
    """An attempt we thought lost (timeout, waiting to retry) turns out delivered: no error code is left."""
    make_subscriber(session, "13200002000", None, channels=["sms"])
    fake_providers["aliyun_sms"].script = lambda m, a: SendResult.retryable(m.reference, "timeout", "read timeout", 600)
    notice = make_notice(session, agency, channels=["sms"])
    await fanout_notice(ctx, notice.id)
    [row] = deliveries(session, notice.id)
    await send_deliveries(ctx, notice.id, "sms", [row.id])
    [row] = deliveries(session, notice.id)
    assert (row.status, row.error_code) == ("queued", "timeout")
    apply_receipts(ctx["engine"], [Receipt(reference=row.id, provider_id=None, delivered=True, code="DELIVRD")])
    [row] = deliveries(session, notice.id)
    assert (row.status, row.error_code, row.error_reason) == ("delivered", None, None)


async def test_wechat_receipts_match_before_and_after_the_send_is_recorded(
    ctx: dict[str, Any], session: Session, agency: Agency
) -> None:
    """A WeChat report names only the message id and the openid; it may overtake our own record."""
    for i in range(3):
        make_subscriber(session, f"1320000100{i}", f"oid-w{i}", channels=["wechat"])
    notice = make_notice(session, agency, channels=["wechat"])
    await fanout_notice(ctx, notice.id)
    rows = {d.recipient: d for d in deliveries(session, notice.id)}
    engine = ctx["engine"]
    _claim(engine, [d.id for d in rows.values()], utcnow())  # all three are `sending`, no provider id yet
    recorded = rows["oid-w1"]
    recorded.status, recorded.provider_id = "sent", "msg-1"  # the worker recorded this one's send
    session.add(recorded)
    session.commit()
    reports = [
        Receipt(reference=None, provider_id="msg-0", delivered=True, code="success", recipient="oid-w0"),
        Receipt(reference=None, provider_id="msg-1", delivered=True, code="success", recipient="oid-w1"),
        Receipt(reference=None, provider_id="msg-1", delivered=True, code="success", recipient="oid-w1"),
        Receipt(reference=None, provider_id="msg-9", delivered=True, code="success", recipient="oid-nobody"),
    ]
    out = apply_receipts(engine, reports)
    assert (out.updated, out.duplicates, out.unknown) == (2, 1, 1)
    assert out.notices == {notice.id}
    after = {d.recipient: d for d in deliveries(session, notice.id)}
    assert after["oid-w0"].status == after["oid-w1"].status == "delivered"
    assert after["oid-w1"].receipts == 2
    assert after["oid-w2"].status == "sending"  # no report for it: untouched
    again = apply_receipts(engine, reports[1:2])  # the provider repeats a report later
    assert (again.updated, again.duplicates, again.unknown) == (0, 1, 0)


async def test_receipt_before_the_workers_record_keeps_delivered_and_its_time(
    ctx: dict[str, Any], session: Session, agency: Agency
) -> None:
    make_subscriber(session, "13200004000", None, channels=["sms"])
    notice = make_notice(session, agency, channels=["sms"])
    await fanout_notice(ctx, notice.id)
    [row] = deliveries(session, notice.id)
    [claimed] = _claim(ctx["engine"], [row.id], utcnow())
    report = Receipt(reference=row.id, provider_id=None, delivered=True, code="DELIVERED")
    assert apply_receipts(ctx["engine"], [report]).updated == 1  # the report overtook the record
    result = SendResult.accepted(row.id, "biz-9")
    _record(ctx, ctx["engine"], ctx["settings"], "sms", [(claimed, "aliyun_sms", result)])
    [after] = deliveries(session, notice.id)
    assert after.status == "delivered" and after.provider_id == "biz-9" and after.final_at is not None


async def test_batch_sms_reports_match_by_request_id_and_number_across_chunks(
    ctx: dict[str, Any], session: Session, agency: Agency, monkeypatch: Any
) -> None:
    """SendBatchSms reports share one BizId; lookups split into chunks must still match each once."""
    monkeypatch.setattr(receipts_module, "CHUNK", 2)
    phones = [f"1320000200{i}" for i in range(5)]
    for phone in phones:
        make_subscriber(session, phone, None, channels=["sms"])
    notice = make_notice(session, agency, channels=["sms"])
    await fanout_notice(ctx, notice.id)
    rows = {d.recipient: d for d in deliveries(session, notice.id)}
    _claim(ctx["engine"], [d.id for d in rows.values()], utcnow())
    for phone in phones[:3]:  # the worker recorded the BizId of these; two reports overtook it
        row = session.get(Delivery, rows[phone].id)
        assert row is not None
        row.status, row.provider_id = "sent", "biz-1"
        session.add(row)
    session.commit()
    out = apply_receipts(
        ctx["engine"],
        [Receipt(reference=None, provider_id="biz-1", delivered=True, code="DELIVERED", recipient=p) for p in phones],
    )
    assert (out.updated, out.duplicates, out.unknown) == (5, 0, 0)
    assert {d.status for d in deliveries(session, notice.id)} == {"delivered"}


async def test_sweeper_recovers_killed_worker_and_lost_jobs(
    ctx: dict[str, Any], session: Session, agency: Agency, fake_providers: dict[str, ScriptedChannel]
) -> None:
    for i in range(6):
        make_subscriber(session, f"1310000000{i}", None, channels=["sms"])
    notice = make_notice(session, agency, channels=["sms"])
    await fanout_notice(ctx, notice.id)
    # The queue is never started: the jobs fan-out enqueued are "lost" (as if Redis restarted).
    ctx["queue"]._queue = asyncio.Queue()
    ids = [d.id for d in deliveries(session, notice.id)]
    # A worker claimed two and was SIGKILLed before sending.
    _claim(ctx["engine"], ids[:2], utcnow())
    later = utcnow() + timedelta(minutes=5)
    ctx["clock"] = lambda: later
    report = await sweep(ctx)
    assert report["reclaimed"] == 2 and report["requeued"] == 6
    await drain(ctx)
    assert sorted(m.reference for m in fake_providers["aliyun_sms"].sent) == sorted(ids)  # each exactly once
    rows = deliveries(session, notice.id)
    assert {d.status for d in rows} == {"sent"}
    assert sum(d.uncertain for d in rows) == 2  # the killed attempts are reported as uncertain
    assert (await sweep(ctx))["requeued"] == 0
