"""The audit table: rows are only ever inserted (guarded in the application and, on PostgreSQL, by a trigger)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Delete, Index, Update, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

from govconnect.clock import utcnow

# Actions the audit log records; `record_audit` refuses any other name so filters stay reliable.
AUDIT_ACTIONS = (
    "sign_in",
    "sign_out",
    "key_create",
    "key_revoke",
    "staff_create",
    "template_change",
    "draft",
    "submit",
    "approve",
    "reject",
    "send",
    "status_change",
    "edit",
    "cancel",
    "retract",
    "correct",
    "review",
    "policy_change",
    "schedule_change",
    "suppression_change",
    "settings_change",
    "click_to_dial",
)


class AuditEntry(SQLModel, table=True):
    """One action that matters: who (actor), when (at), from where (client_address), on what, what changed."""

    __tablename__ = "audit"
    __table_args__ = (
        Index("ix_audit_agency_at", "agency_id", "at"),
        Index("ix_audit_target", "target_type", "target_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    agency_id: int | None = Field(default=None)
    # "staff:12", "key:gc_ab12cd34", "cli", "system:sweeper": the kind, then the id.
    actor: str = Field(max_length=80)
    client_address: str = Field(default="", max_length=64)
    action: str = Field(max_length=40, index=True)
    target_type: str = Field(default="", max_length=40)
    target_id: str = Field(default="", max_length=64)
    changes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class AuditImmutable(RuntimeError):
    """Raised when code tries to change or delete an audit row: the log is append-only."""


# The one exception: retention's DELETE of rows past AUDIT_DAYS carries this execution option.
RETENTION_OPTION = "govconnect_retention"


def _refuse_statement(_conn: Any, clause: Any, *_args: Any, **_kwargs: Any) -> None:
    if isinstance(clause, Update | Delete) and getattr(clause.table, "name", None) == AuditEntry.__tablename__:
        if isinstance(clause, Delete) and clause.get_execution_options().get(RETENTION_OPTION):
            return
        raise AuditImmutable("审计记录只能追加 / audit rows cannot be changed or deleted")


def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    if any(isinstance(obj, AuditEntry) for obj in (*session.dirty, *session.deleted)):
        raise AuditImmutable("审计记录只能追加 / audit rows cannot be changed or deleted")


# Every engine and session of the application: UPDATE/DELETE statements on `audit` (Core or ORM)
# and changed or deleted AuditEntry objects are refused before they reach the database.
event.listen(Engine, "before_execute", _refuse_statement)
event.listen(Session, "before_flush", _refuse_flush)
