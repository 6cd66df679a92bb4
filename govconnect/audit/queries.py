"""Reading the audit log: an agency's entries, filtered, a page at a time or all of them in keyset pages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from govconnect.audit.models import AuditEntry

A = AuditEntry.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to read; every field optional except the agency."""

    agency_id: int
    action: str | None = None
    actor: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _query(f: AuditFilter) -> Any:
    query = select(A).where(A.c.agency_id == f.agency_id)
    for column, value in (
        (A.c.action, f.action),
        (A.c.actor, f.actor),
        (A.c.target_type, f.target_type),
        (A.c.target_id, f.target_id),
    ):
        if value:
            query = query.where(column == value)
    if f.since is not None:
        query = query.where(A.c.at >= f.since)
    if f.until is not None:
        query = query.where(A.c.at < f.until)
    return query


def audit_page(conn: Connection, f: AuditFilter, limit: int, offset: int) -> tuple[list[Any], int]:
    """One page of entries, newest first, and how many match."""
    query = _query(f)
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(query.order_by(A.c.id.desc()).offset(offset).limit(limit)).all()
    return list(rows), int(total)


def iter_audit(engine: Engine, f: AuditFilter, batch: int = 1000) -> Iterator[Any]:
    """Every matching entry, oldest first, read a page at a time (an export never holds the whole log)."""
    after = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(_query(f).where(A.c.id > after).order_by(A.c.id).limit(batch)).all()
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].id
