"""Retention: batches that hold no lock between them, public notices kept, reports unchanged after a purge."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from govconnect.agencies.models import Agency
from govconnect.audit.models import AuditEntry, AuditImmutable
from govconnect.audit.record import Actor, record_audit
from govconnect.clock import utcnow
from govconnect.notices.fanout import fanout_notice
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import AgencyCallback, Delivery, NoticeOutbox
from govconnect.notices.sending import _claim
from govconnect.operations.retention import PurgeReport, purge_expired
from govconnect.reports.queries import agency_reports
from govconnect.reports.rollup import beijing_day
from govconnect.settings import RetentionSettings
from tests.factories import make_subscriber
from tests.govconnect.notices.conftest import drain
from tests.govconnect.reports.test_rollups import send_notice


def age(session: Session, notice_id: str, days: int, status: str = "completed") -> None:
    """Move a notice (and its deliveries) `days` into the past, finished (the sweeper's work by then)."""
    moment = utcnow() - timedelta(days=days)
    session.execute(
        update(Notice).where(Notice.id == notice_id).values(created_at=moment, status=status)  # type: ignore[arg-type]
    )
    session.execute(
        update(Delivery).where(Delivery.notice_id == notice_id).values(created_at=moment)  # type: ignore[arg-type]
    )
    session.commit()


async def test_purge_in_batches_keeps_public_notices_and_reports(
    ctx: dict[str, Any], session: Session, agency: Agency
) -> None:
    for i in range(5):
        make_subscriber(session, f"1350000000{i}", None, channels=["sms"])
    old_private = send_notice(session, agency, ctx["settings"], ["sms"])
    old_public = send_notice(session, agency, ctx["settings"], ["sms", "site"])
    recent = send_notice(session, agency, ctx["settings"], ["sms"])
    for notice_id in (old_private, old_public, recent):
        await fanout_notice(ctx, notice_id)
    await drain(ctx)
    today = beijing_day(utcnow())
    with ctx["engine"].connect() as conn:
        before = agency_reports(conn, None, today, today)
    assert before[0]["totals"]["deliveries"] == 15
    age(session, old_private, 2000)
    age(session, old_public, 2000)
    # A notice still sending keeps its queued deliveries however old it is.
    await ctx["queue"].stop()
    active = send_notice(session, agency, ctx["settings"], ["sms"])
    await fanout_notice(ctx, active)  # deliveries written, sends queued and not run
    age(session, active, 2000, status="sending")
    pending_ids = [d.id for d in session.exec(select(Delivery).where(Delivery.notice_id == active)).all()]

    claims_between_batches: list[int] = []

    def between_batches(report: PurgeReport) -> None:
        # Another worker's write gets through between two batches: no transaction is left open.
        claims_between_batches.append(len(_claim(ctx["engine"], pending_ids[:1], utcnow())))
        session.execute(update(Delivery).where(Delivery.id == pending_ids[0]).values(status="queued"))  # type: ignore[arg-type]
        session.commit()

    settings = ctx["settings"].retention.model_copy(update={"batch_size": 2})
    report = purge_expired(ctx["engine"], settings, on_batch=between_batches)
    assert report.deliveries == 10
    assert report.batches >= 6  # 5 deliveries per notice in batches of 2: 3 batches each, plus notices
    assert claims_between_batches[0] == 1
    session.expire_all()
    remaining = {d.notice_id for d in session.exec(select(Delivery)).all()}
    assert remaining == {recent, active}
    notices = {n.id for n in session.exec(select(Notice)).all()}
    assert old_private not in notices and report.notices == 1  # private, past NOTICES_DAYS: gone
    assert {old_public, recent, active} <= notices  # public stays on the site; active is never purged
    assert not session.exec(select(NoticeOutbox).where(NoticeOutbox.notice_id == old_private)).all()
    with ctx["engine"].connect() as conn:
        after = agency_reports(conn, None, today, today)
    # Rollups are counted on the day deliveries were written, and purging deliveries changes none.
    assert after[0]["totals"]["deliveries"] == 20
    assert {k: v for k, v in after[0]["totals"].items() if k != "deliveries"} == {
        k: v for k, v in before[0]["totals"].items() if k not in ("deliveries", "notices")
    } | {"notices": 4}
    # A second purge finds nothing.
    assert purge_expired(ctx["engine"], settings).deliveries == 0


def test_audit_rows_past_their_keeping_time_go_and_nobody_else_deletes_them(session: Session, agency: Agency) -> None:
    """Retention purges audit rows older than AUDIT_DAYS (in batches); the log stays append-only for all else."""
    now = utcnow()
    actor = Actor.cli(agency.id)
    for days in (400, 300, 10):
        record_audit(
            session, actor, "sign_in", "staff_user", f"u{days}", agency_id=agency.id, moment=now - timedelta(days=days)
        )
    session.commit()
    report = purge_expired(session.get_bind(), RetentionSettings(audit_days=200, batch_size=1), now)  # type: ignore[arg-type]
    assert report.audit == {"audit": 2} and report.batches >= 2
    session.expire_all()
    assert [row.target_id for row in session.exec(select(AuditEntry)).all()] == ["u10"]
    with pytest.raises(AuditImmutable):  # the application refuses it before the database sees it
        session.execute(delete(AuditEntry))
    session.rollback()
    if session.get_bind().dialect.name == "postgresql":  # and the database refuses a DELETE from elsewhere
        with session.get_bind().connect() as raw, pytest.raises(DBAPIError):  # type: ignore[union-attr]
            raw.exec_driver_sql("DELETE FROM audit")
    with session.get_bind().connect() as raw, pytest.raises(DBAPIError):  # type: ignore[union-attr]
        raw.exec_driver_sql("UPDATE audit SET actor = 'x'")


def test_answered_agency_callbacks_go_with_the_deliveries(session: Session, agency: Agency) -> None:
    """A callback answered (or given up) before DELIVERIES_DAYS goes; a pending one stays, however old."""
    now = utcnow()
    old = now - timedelta(days=200)
    answered = AgencyCallback(agency_id=agency.id or 0, status="delivered", created_at=old, done_at=old)
    owed = AgencyCallback(agency_id=agency.id or 0, status="pending", created_at=old, next_attempt_at=old)
    recent = AgencyCallback(agency_id=agency.id or 0, status="failed", created_at=now, done_at=now)
    session.add_all([answered, owed, recent])
    session.commit()
    report = purge_expired(session.get_bind(), RetentionSettings(deliveries_days=180), now)  # type: ignore[arg-type]
    assert report.callbacks == 1
    session.expire_all()
    assert sorted(c.status for c in session.exec(select(AgencyCallback)).all()) == ["failed", "pending"]


def test_sms_replies_and_calls_go_with_the_deliveries(session: Session, agency: Agency) -> None:
    """A reply holds a number and what the person wrote; a call names whom it reached: both kept DELIVERIES_DAYS."""
    from govconnect.calls.models import DialCall
    from govconnect.notices.reply_models import NoticeReply

    now = utcnow()
    old = now - timedelta(days=200)
    session.add_all(
        [
            NoticeReply(sender="13800000001", text="收到", provider="cmpp", received_at=old),
            NoticeReply(sender="13800000002", text="1", provider="aliyun_sms", received_at=now),
            DialCall(agency_id=agency.id or 0, actor="staff:1", target_type="contact", target_id="1", created_at=old),
            DialCall(agency_id=agency.id or 0, actor="staff:1", target_type="contact", target_id="2", created_at=now),
        ]
    )
    session.commit()
    report = purge_expired(session.get_bind(), RetentionSettings(deliveries_days=180), now)  # type: ignore[arg-type]
    assert (report.replies, report.calls) == (1, 1)
    session.expire_all()
    assert [r.text for r in session.exec(select(NoticeReply)).all()] == ["1"]
    assert [c.target_id for c in session.exec(select(DialCall)).all()] == ["2"]
