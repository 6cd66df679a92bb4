"""Retention: delete deliveries, private notices and audit rows past their keeping time, in small batches.

Each batch is its own short transaction, so the pipeline's claims and receipts (which touch other
rows) never wait behind a purge for long. Public notices stay on the site however old; report
rollups are counts kept apart from deliveries, so reports do not change when deliveries go.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, DateTime, MetaData, Table, delete, exists, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from govconnect.audit.models import RETENTION_OPTION
from govconnect.calls.models import DialCall
from govconnect.clock import utcnow
from govconnect.jobs import job
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import AgencyCallback, Delivery, NoticeOutbox
from govconnect.notices.reply_models import NoticeReply
from govconnect.settings import RetentionSettings

log = logging.getLogger("govconnect.operations")
D = Delivery.__table__  # type: ignore[attr-defined]
N = Notice.__table__  # type: ignore[attr-defined]
O = NoticeOutbox.__table__  # type: ignore[attr-defined]  # noqa: E741
C = AgencyCallback.__table__  # type: ignore[attr-defined]
R = NoticeReply.__table__  # type: ignore[attr-defined]
K = DialCall.__table__  # type: ignore[attr-defined]
# Notices in these states still have work ahead of them and are never purged.
ACTIVE_NOTICE_STATUSES = ("scheduled", "accepted", "sending")
# Audit tables (name -> timestamp column) purged after `audit_days`. The audit log is append-only
# for everyone else: on PostgreSQL its trigger lets a DELETE through only in a transaction that set
# `govconnect.retention` (migration 0016), which only this module does.
AUDIT_TABLES: dict[str, str] = {"audit": "at"}
RETENTION_MARK = text("SET LOCAL govconnect.retention = 'on'")


@dataclass
class PurgeReport:
    """What one purge removed."""

    deliveries: int = 0
    notices: int = 0
    audit: dict[str, int] = field(default_factory=dict)
    callbacks: int = 0
    replies: int = 0
    calls: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, Any]:
        """For the CLI and job results."""
        return {
            "deliveries": self.deliveries,
            "notices": self.notices,
            "audit": self.audit,
            "callbacks": self.callbacks,
            "replies": self.replies,
            "calls": self.calls,
            "batches": self.batches,
        }


BatchHook = Callable[[PurgeReport], None]


def _done_notices(engine: Engine, before: datetime, after_id: str, limit: int, public: bool | None) -> list[str]:
    query = select(N.c.id).where(N.c.created_at < before, N.c.status.not_in(ACTIVE_NOTICE_STATUSES), N.c.id > after_id)
    if public is not None:
        query = query.where(N.c.public == public)
    with engine.connect() as conn:
        return [str(row[0]) for row in conn.execute(query.order_by(N.c.id).limit(limit))]


def _purge_deliveries(
    engine: Engine, settings: RetentionSettings, moment: datetime, report: PurgeReport, on_batch: BatchHook | None
) -> None:
    cutoff = moment - timedelta(days=settings.deliveries_days)
    after = ""
    while notices := _done_notices(engine, cutoff, after, 500, None):
        after = notices[-1]
        for notice_id in notices:
            while True:
                with engine.begin() as conn:
                    ids = [
                        row[0]
                        for row in conn.execute(
                            select(D.c.id)
                            .where(D.c.notice_id == notice_id, D.c.next_attempt_at.is_(None))
                            .limit(settings.batch_size)
                        )
                    ]
                    if ids:
                        conn.execute(delete(D).where(D.c.id.in_(ids)))
                if not ids:
                    break
                report.deliveries += len(ids)
                report.batches += 1
                if on_batch is not None:
                    on_batch(report)
                if len(ids) < settings.batch_size:
                    break


def _purge_notices(
    engine: Engine, settings: RetentionSettings, moment: datetime, report: PurgeReport, on_batch: BatchHook | None
) -> None:
    """Private notices past `notices_days` whose deliveries are gone; public ones stay on the site."""
    cutoff = moment - timedelta(days=settings.notices_days)
    after = ""
    while candidates := _done_notices(engine, cutoff, after, settings.batch_size, False):
        after = candidates[-1]
        with engine.connect() as conn:
            busy = {
                str(row[0])
                for row in conn.execute(
                    select(N.c.id).where(N.c.id.in_(candidates), exists().where(D.c.notice_id == N.c.id))
                )
            }
        ids = [c for c in candidates if c not in busy]
        if not ids:
            continue
        try:
            report.notices += _delete_notices(engine, ids)
        except IntegrityError:
            # Another table still refers to some of them: delete one by one, keeping those.
            for notice_id in ids:
                try:
                    report.notices += _delete_notices(engine, [notice_id])
                except IntegrityError:
                    log.info("retention: notice %s is still referenced; kept", notice_id)
        report.batches += 1
        if on_batch is not None:
            on_batch(report)


def _delete_notices(engine: Engine, ids: list[str]) -> int:
    with engine.begin() as conn:
        conn.execute(delete(O).where(O.c.notice_id.in_(ids)))
        return int(conn.execute(delete(N).where(N.c.id.in_(ids))).rowcount or 0)


def _purge_audit(
    engine: Engine, settings: RetentionSettings, moment: datetime, report: PurgeReport, on_batch: BatchHook | None
) -> None:
    cutoff = moment - timedelta(days=settings.audit_days)
    present = set(inspect(engine).get_table_names())
    for name, column in sorted(AUDIT_TABLES.items()):
        if name not in present:
            continue
        table = Table(name, MetaData(), Column(column, DateTime(timezone=True)), Column("id"))
        removed = 0
        while True:
            with engine.begin() as conn:
                ids = [
                    r[0]
                    for r in conn.execute(select(table.c.id).where(table.c[column] < cutoff).limit(settings.batch_size))
                ]
                if ids:
                    if conn.dialect.name == "postgresql":
                        conn.execute(RETENTION_MARK)
                    statement = delete(table).where(table.c.id.in_(ids))
                    conn.execute(statement.execution_options(**{RETENTION_OPTION: True}))
            if not ids:
                break
            removed += len(ids)
            report.batches += 1
            if on_batch is not None:
                on_batch(report)
        report.audit[name] = removed


def _purge_callbacks(
    engine: Engine, settings: RetentionSettings, moment: datetime, report: PurgeReport, on_batch: BatchHook | None
) -> None:
    """Answered or abandoned agency callbacks carry delivery ids and outcomes: kept as long as deliveries."""
    cutoff = moment - timedelta(days=settings.deliveries_days)
    while True:
        with engine.begin() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    select(C.c.id).where(C.c.done_at.is_not(None), C.c.done_at < cutoff).limit(settings.batch_size)
                )
            ]
            if ids:
                conn.execute(delete(C).where(C.c.id.in_(ids)))
        if not ids:
            return
        report.callbacks += len(ids)
        report.batches += 1
        if on_batch is not None:
            on_batch(report)


def _purge_people_records(
    engine: Engine, settings: RetentionSettings, moment: datetime, report: PurgeReport, on_batch: BatchHook | None
) -> None:
    """SMS replies (a number and what the person wrote) and click-to-dial calls: kept as long as deliveries."""
    cutoff = moment - timedelta(days=settings.deliveries_days)
    for table, column, counter in ((R, R.c.received_at, "replies"), (K, K.c.created_at, "calls")):
        while True:
            with engine.begin() as conn:
                ids = [r[0] for r in conn.execute(select(table.c.id).where(column < cutoff).limit(settings.batch_size))]
                if ids:
                    conn.execute(delete(table).where(table.c.id.in_(ids)))
            if not ids:
                break
            setattr(report, counter, getattr(report, counter) + len(ids))
            report.batches += 1
            if on_batch is not None:
                on_batch(report)


def purge_expired(
    engine: Engine, settings: RetentionSettings, moment: datetime | None = None, on_batch: BatchHook | None = None
) -> PurgeReport:
    """Delete what is past its keeping time; `on_batch` runs between batches (no transaction open)."""
    moment = moment or utcnow()
    report = PurgeReport()
    _purge_deliveries(engine, settings, moment, report, on_batch)
    _purge_people_records(engine, settings, moment, report, on_batch)
    _purge_notices(engine, settings, moment, report, on_batch)
    _purge_audit(engine, settings, moment, report, on_batch)
    _purge_callbacks(engine, settings, moment, report, on_batch)
    log.info("retention: purged %s", report.as_dict())
    return report


@job
async def purge_expired_records(ctx: dict[str, Any]) -> dict[str, Any]:
    """The daily retention job (arq cron in workers, a daily timer in embedded mode)."""
    report = await asyncio.to_thread(purge_expired, ctx["engine"], ctx["settings"].retention)
    return report.as_dict()
