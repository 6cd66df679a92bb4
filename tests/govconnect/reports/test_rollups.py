"""Rollups are kept by the pipeline itself, count each final outcome once, and merge percentiles."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import Session, select

from channels.base import OutboundMessage, Receipt, SendResult
from govconnect.agencies.models import Agency
from govconnect.audit.record import Actor
from govconnect.citizens.optout import unsubscribe_phone
from govconnect.clock import utcnow
from govconnect.notices.fanout import fanout_notice
from govconnect.notices.pipeline_models import Delivery
from govconnect.notices.receipts import apply_receipts
from govconnect.notices.schemas import NoticeCreate
from govconnect.notices.sending import send_deliveries
from govconnect.notices.service import accept_notice, cancel_notice
from govconnect.notices.sweeper import sweep
from govconnect.reports.models import ReportRollup
from govconnect.reports.queries import agency_reports, percentile
from govconnect.reports.rollup import RollupChanges, beijing_day, count_approval, rollup_batch, write_changes
from tests.factories import make_subscriber
from tests.govconnect.notices.conftest import drain
from tests.govconnect.notices.fakes import ScriptedChannel


def send_notice(session: Session, agency: Agency, settings: Any, channels: list[str]) -> str:
    data = NoticeCreate.model_validate(
        {
            "title": "停水通知",
            "body": "明日停水，请做好准备。",
            "category": "yjyj",
            "urgency": "urgent",
            "channels": channels,
            "audience": {"subscribers": {"categories": ["yjyj"]}},
        }
    )
    notice, created = accept_notice(session, agency, data, None, settings, utcnow(), Actor.cli(agency.id))
    assert created
    return notice.id


def report_for(ctx: dict[str, Any], agency: Agency) -> dict[str, Any]:
    today = beijing_day(utcnow())
    with ctx["engine"].connect() as conn:
        (report,) = agency_reports(conn, [agency.id or 0], today, today)
    return report


def by_channel(report: dict[str, Any], channel: str, provider: str | None) -> dict[str, Any]:
    return next(c for c in report["channels"] if c["channel"] == channel and c["provider"] == provider)


async def test_each_outcome_is_counted_once_through_retries_reruns_and_late_receipts(
    ctx: dict[str, Any], session: Session, agency: Agency, fake_providers: dict[str, ScriptedChannel]
) -> None:
    phones = [f"1390000000{i}" for i in range(5)]
    for phone in phones:
        make_subscriber(session, phone, None, channels=["sms"])

    def script(message: OutboundMessage, attempt: int) -> SendResult:
        if message.recipient == phones[4]:
            return SendResult.permanent(message.reference, "isv.MOBILE_NUMBER_ILLEGAL")
        if message.recipient == phones[3] and attempt == 1:
            return SendResult.retryable(message.reference, "503", retry_after=0.01)
        return SendResult.accepted(message.reference, f"b-{message.reference}", parts=2)

    fake_providers["aliyun_sms"].script = script
    notice_id = send_notice(session, agency, ctx["settings"], ["sms"])
    await fanout_notice(ctx, notice_id)
    await drain(ctx)
    rows = {d.recipient: d for d in session.exec(select(Delivery).where(Delivery.notice_id == notice_id)).all()}
    ids = [rows[p].id for p in phones]
    # arq runs a send job again: nothing is claimed, nothing counted twice.
    assert (await send_deliveries(ctx, notice_id, "sms", ids)) == {"claimed": 0}
    # Receipts: phone 0 delivered (twice: a provider repeat), phone 1 failed.
    receipts = [
        Receipt(reference=ids[0], provider_id=None, delivered=True, code="DELIVRD"),
        Receipt(reference=ids[0], provider_id=None, delivered=True, code="DELIVRD"),
        Receipt(reference=ids[1], provider_id=None, delivered=False, code="MK:0001"),
    ]
    apply_receipts(ctx["engine"], receipts)
    apply_receipts(ctx["engine"], receipts)
    # Phones 2 and 3 never get a receipt: the sweeper gives up on them after the timeout...
    later = utcnow() + timedelta(seconds=ctx["settings"].notices.receipt_timeout_seconds + 60)
    ctx["clock"] = lambda: later
    assert (await sweep(ctx))["expired"] == 2
    assert (await sweep(ctx))["expired"] == 0
    # ...and then phone 2's report arrives late: unknown becomes delivered on the same row.
    apply_receipts(ctx["engine"], [Receipt(reference=ids[2], provider_id=None, delivered=True, code="DELIVRD")])

    report = report_for(ctx, agency)
    totals = report["totals"]
    assert totals["notices"] == 1
    assert totals["deliveries"] == 5
    assert totals["sent"] == 4
    assert totals["sms_parts"] == 8
    assert (totals["delivered"], totals["failed"], totals["unknown"]) == (2, 2, 1)
    assert totals["failures_by_reason"] == {"MK:0001": 1, "isv.MOBILE_NUMBER_ILLEGAL": 1}
    assert totals["time_to_deliver_p50_seconds"] is not None
    aliyun = by_channel(report, "sms", "aliyun_sms")
    assert (aliyun["sent"], aliyun["delivered"], aliyun["failed"], aliyun["unknown"]) == (4, 2, 2, 1)
    # Counters match a scan of the deliveries themselves.
    session.expire_all()
    statuses = sorted(d.status for d in session.exec(select(Delivery)).all())
    assert statuses == ["delivered", "delivered", "failed", "failed", "unknown"]


async def test_no_receipt_channels_count_as_delivered_and_cancel_counts_cancelled(
    ctx: dict[str, Any], session: Session, agency: Agency
) -> None:
    for i in range(3):
        make_subscriber(session, f"1370000000{i}", None, channels=["sms"])
    notice_id = send_notice(session, agency, ctx["settings"], ["sms", "weibo"])
    await fanout_notice(ctx, notice_id)  # deliveries written, sends queued but not run
    cancel_notice(session, agency, notice_id, utcnow(), Actor.cli(agency.id))
    await drain(ctx)
    totals = report_for(ctx, agency)["totals"]
    assert totals["deliveries"] == 4
    assert totals["cancelled"] == 4
    assert totals["sent"] == 0

    other = send_notice(session, agency, ctx["settings"], ["weibo"])
    await fanout_notice(ctx, other)
    await drain(ctx)
    report = report_for(ctx, agency)
    weibo = by_channel(report, "weibo", "weibo")
    assert (weibo["sent"], weibo["delivered"]) == (1, 1)


async def test_optout_is_counted_against_the_agency_that_last_reached_the_phone(
    ctx: dict[str, Any], session: Session, agency: Agency
) -> None:
    make_subscriber(session, "13600000001", None, channels=["sms"])
    notice_id = send_notice(session, agency, ctx["settings"], ["sms"])
    await fanout_notice(ctx, notice_id)
    await drain(ctx)
    unsubscribe_phone(session, "+86 136 0000 0001", "sms-reply:test")
    session.commit()
    unsubscribe_phone(session, "13600000001", "sms-reply:test")  # already out: not counted again
    session.commit()
    unsubscribe_phone(session, "13600000009", "sms-reply:test")  # nobody
    session.commit()
    assert report_for(ctx, agency)["totals"]["optouts"] == 1


def test_approval_hook_and_percentiles_merge(session: Session, agency: Agency) -> None:
    moment = utcnow()
    count_approval(session.connection(), agency.id or 0, moment, 120)
    count_approval(session.connection(), agency.id or 0, moment, 60)
    session.commit()
    row = session.exec(select(ReportRollup).where(ReportRollup.agency_id == agency.id)).one()
    assert (row.approvals, row.approval_seconds) == (2, 180)
    # 10 deliveries under 5 s, 10 between 60 and 120 s: the median is the 5 s bound, p95 is 90% into 60-120 s.
    histogram = [10, 0, 0, 0, 10] + [0] * 7
    assert percentile(histogram, 0.5) == 5.0
    assert percentile(histogram, 0.95) == 114.0
    assert percentile([0] * 12, 0.5) is None


def test_a_batch_writes_its_counts_once_at_the_end_and_nothing_on_error(session: Session, agency: Agency) -> None:
    engine = session.get_bind()
    day = beijing_day(utcnow())
    changes = RollupChanges()
    changes.add((agency.id or 0, day, "sms", "cmpp"), "sent", 1)
    with engine.begin() as conn, rollup_batch(conn):  # type: ignore[union-attr]
        write_changes(conn, changes)
        write_changes(conn, changes)
        # Nothing is written until the batch ends (then in key order, once per row).
        assert conn.exec_driver_sql("SELECT count(*) FROM report_rollup").scalar() == 0
    try:
        with engine.begin() as conn, rollup_batch(conn):  # type: ignore[union-attr]
            write_changes(conn, changes)
            raise RuntimeError("the transaction fails")
    except RuntimeError:
        pass
    row = session.exec(select(ReportRollup).where(ReportRollup.agency_id == agency.id)).one()
    assert row.sent == 2
