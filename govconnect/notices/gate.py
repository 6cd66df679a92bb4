"""The one gate every notice status change goes through.

`change_status` checks `NOTICE_TRANSITIONS` (beside the status enum in `notices/models.py`),
writes the change with a guarded `UPDATE … WHERE status = :from` (so a change made in between by
another process is never overwritten), records who and when on the notice, and appends the
audit row in the same transaction. Side effects (cancelling deliveries, deleting a Weibo post)
belong to the caller, after the gate said yes.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection
from sqlmodel import Session

from govconnect.audit.record import Actor, record_audit
from govconnect.clock import utcnow
from govconnect.errors import InvalidTransition as ErrorsInvalidTransition
from govconnect.errors import NotFound
from govconnect.notices.models import NOTICE_TRANSITIONS, Notice

N = Notice.__table__  # type: ignore[attr-defined]

# The audit action for a move into each status (others are recorded as `status_change`).
ACTIONS = {
    "pending_approval": "submit",
    "approved": "approve",
    "rejected": "reject",
    "cancelled": "cancel",
    "retracted": "retract",
    "draft": "edit",
}


class InvalidTransition(ErrorsInvalidTransition):
    """The table does not allow this change, or the notice changed status meanwhile (409)."""

    def __init__(self, current: str, target: str) -> None:
        super().__init__(
            "invalid_transition",
            f"通知状态为 {current}，不能变为 {target} / A {current} notice cannot become {target}",
            {"status": current, "requested": target},
        )
        self.current = current
        self.target = target


def is_allowed(current: str, target: str) -> bool:
    """True when the transition table allows going from `current` to `target`."""
    return target in NOTICE_TRANSITIONS.get(current, frozenset())


def change_status(
    db: Connection | Session,
    notice_id: str,
    target: str,
    actor: Actor,
    *,
    only_from: Collection[str] | None = None,
    values: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
    moment: datetime | None = None,
) -> str | None:
    """Move a notice to `target`; the status it left, or None when it was not in `only_from`.

    Raises InvalidTransition when the table forbids the change or another process changed the
    status between our read and our write. `only_from` lets background jobs act only on the
    statuses they handle and quietly skip the rest (a cancelled notice is not an error to them).
    """
    conn = db.connection() if isinstance(db, Session) else db
    moment = moment or utcnow()
    row = conn.execute(select(N.c.status, N.c.agency_id).where(N.c.id == notice_id)).first()
    if row is None:
        raise NotFound()
    current: str = row[0]
    agency_id: int | None = row[1]
    if only_from is not None and current not in only_from:
        return None
    if not is_allowed(current, target):
        raise InvalidTransition(current, target)
    written = conn.execute(
        update(N)
        .where(N.c.id == notice_id, N.c.status == current)
        .values(status=target, status_changed_at=moment, status_changed_by=actor.label[:80], **(values or {}))
    ).rowcount
    if written != 1:
        latest: str = conn.execute(select(N.c.status).where(N.c.id == notice_id)).scalar_one()
        if only_from is not None and latest not in only_from:
            return None
        raise InvalidTransition(latest, target)
    record_audit(
        conn,
        actor,
        ACTIONS.get(target, "status_change"),
        "notice",
        notice_id,
        {"from": current, "to": target, **(changes or {})},
        agency_id=agency_id,
        moment=moment,
    )
    return current
