"""`next_attempt_at` marks pending work (the sweeper's partial index); `status` is in no index.

Both databases: the marker is set exactly while a delivery is queued or sending, the sweeper's
receipt expiry reaches old notices through the notice table. PostgreSQL: claims are HOT updates.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlmodel import Session

from channels.base import OutboundMessage, Receipt, SendResult
from govconnect.agencies.models import Agency
from govconnect.audit.record import Actor
from govconnect.clock import utcnow
from govconnect.notices.fanout import fanout_notice
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import PENDING_STATUSES
from govconnect.notices.receipts import apply_receipts
from govconnect.notices.sending import claim_statement
from govconnect.notices.service import cancel_notice
from govconnect.notices.sweeper import sweep
from tests.factories import make_subscriber
from tests.govconnect.notices.conftest import drain
from tests.govconnect.notices.fakes import ScriptedChannel
from tests.govconnect.notices.test_pipeline import deliveries, make_notice


async def sms_notice_to(ctx: dict[str, Any], session: Session, agency: Agency, phones: list[str]) -> Notice:
    """An SMS notice to these numbers, fanned out (deliveries queued, nothing sent yet)."""
    for phone in phones:
        make_subscriber(session, phone, None, channels=["sms"])
    notice = make_notice(session, agency, channels=["sms"])
    await fanout_notice(ctx, notice.id)
    return notice


def assert_marker_matches_status(session: Session, notice_id: str) -> None:
    for d in deliveries(session, notice_id):
        assert (d.next_attempt_at is not None) == (d.status in PENDING_STATUSES), (d.status, d.next_attempt_at)


async def test_pending_marker_is_set_exactly_while_queued_or_sending(
    ctx: dict[str, Any], session: Session, agency: Agency, fake_providers: dict[str, ScriptedChannel]
) -> None:
    for i in range(4):
        make_subscriber(session, f"1350000000{i}", f"oid-p{i}", channels=["sms", "wechat"])

    def script(message: OutboundMessage, attempt: int) -> SendResult:
        if message.recipient.endswith("3"):
            return SendResult.permanent(message.reference, "isv.MOBILE_NUMBER_ILLEGAL")
        return SendResult.accepted(message.reference, f"p-{message.reference}")

    fake_providers["aliyun_sms"].script = script
    notice = make_notice(session, agency)
    await fanout_notice(ctx, notice.id)
    rows = deliveries(session, notice.id)
    assert len(rows) == 8 and all(d.status == "queued" and d.next_attempt_at is not None for d in rows)
    await drain(ctx)
    statuses = sorted(d.status for d in deliveries(session, notice.id))
    assert statuses == ["failed"] + ["sent"] * 7
    assert_marker_matches_status(session, notice.id)
    wechat = [d for d in deliveries(session, notice.id) if d.channel == "wechat"]
    out = apply_receipts(ctx["engine"], [Receipt(reference=d.id, provider_id=None, delivered=True) for d in wechat])
    assert out.updated == 4
    assert_marker_matches_status(session, notice.id)


async def test_cancel_clears_the_pending_marker(ctx: dict[str, Any], session: Session, agency: Agency) -> None:
    notice = await sms_notice_to(ctx, session, agency, [f"1350000100{i}" for i in range(3)])  # queue not started
    cancel_notice(session, agency, notice.id, utcnow(), Actor.cli(agency.id))
    rows = deliveries(session, notice.id)
    assert len(rows) == 3
    assert {d.status for d in rows} == {"cancelled"} and all(d.next_attempt_at is None for d in rows)


async def test_sweeper_expires_receipts_of_notices_past_the_receipt_timeout(
    ctx: dict[str, Any], session: Session, agency: Agency
) -> None:
    notice = await sms_notice_to(ctx, session, agency, [f"1340000000{i}" for i in range(3)])
    await drain(ctx)
    assert {d.status for d in deliveries(session, notice.id)} == {"sent"}
    timeout = ctx["settings"].notices.receipt_timeout_seconds
    start = utcnow()

    ctx["clock"] = lambda: start + timedelta(seconds=timeout - 3600)
    assert (await sweep(ctx))["expired"] == 0  # still within the timeout: receipts may come
    ctx["clock"] = lambda: start + timedelta(seconds=timeout + 3600)
    report = await sweep(ctx)
    assert report["expired"] == 3 and report["finished"] == 1
    assert {d.status for d in deliveries(session, notice.id)} == {"unknown"}
    session.expire_all()
    assert session.get(Notice, notice.id).status == "completed"  # type: ignore[union-attr]
    assert (await sweep(ctx))["expired"] == 0


async def test_sweeper_expires_sends_in_flight_at_a_cancel(
    ctx: dict[str, Any], session: Session, agency: Agency
) -> None:
    notice = await sms_notice_to(ctx, session, agency, ["13300000001"])
    await drain(ctx)
    cancel_notice(session, agency, notice.id, utcnow(), Actor.cli(agency.id))  # the one SMS was sent already
    timeout = ctx["settings"].notices.receipt_timeout_seconds
    later = utcnow() + timedelta(seconds=timeout + 3600)
    ctx["clock"] = lambda: later
    assert (await sweep(ctx))["expired"] == 1
    assert [d.status for d in deliveries(session, notice.id)] == ["unknown"]


def test_status_is_in_no_delivery_index(engine: Any) -> None:
    indexes = inspect(engine).get_indexes("delivery")
    names = {i["name"] for i in indexes}
    assert "ix_delivery_pending" in names
    assert all("status" not in i["column_names"] for i in indexes)


def test_claim_is_a_hot_update_through_the_primary_key(session: Session, agency: Agency, engine: Any) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("HOT updates and plans are PostgreSQL's")
    notice = make_notice(session, agency, channels=["sms"])
    with engine.begin() as conn:
        # A broadcast just written: thousands queued, and no planner statistics for them yet.
        conn.execute(
            text(
                "INSERT INTO delivery (id, notice_id, channel, provider, recipient, params, status, priority,"
                " attempts, parts, uncertain, receipts, next_attempt_at, created_at, updated_at)"
                " SELECT md5(i::text), :notice, 'sms', '', '139' || lpad(i::text, 8, '0'), '{}', 'queued', 0,"
                " 0, 1, false, 0, now(), now(), now() FROM generate_series(1, 20000) AS i"
            ),
            {"notice": notice.id},
        )
    ids = [row[0] for row in session.execute(text("SELECT md5(i::text) FROM generate_series(1, 10) AS i"))]
    with engine.connect() as conn:
        stmt = claim_statement(ids, utcnow())
        compiled = stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
        plan = "\n".join(r[0] for r in conn.execute(text(f"EXPLAIN {compiled}")))
        assert "delivery_pkey" in plan, plan
        # This backend's counts not yet reported, this transaction's included: the change is ours.
        hot_updates = text("SELECT pg_stat_get_xact_tuples_hot_updated('delivery'::regclass)")
        before = conn.execute(hot_updates).scalar_one()
        assert len(conn.execute(stmt).all()) == 10
        hot = conn.execute(hot_updates).scalar_one() - before
        conn.rollback()
    assert hot == 10  # no index entry written: `status` is in no index and the pages have room
