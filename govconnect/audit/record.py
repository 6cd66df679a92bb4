"""Writing the audit log: who acted (`Actor`) and one function, `record_audit`, for every entry."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlmodel import Session

from govconnect.agencies.models import ApiKey, StaffUser
from govconnect.audit.models import AUDIT_ACTIONS, AuditEntry
from govconnect.clock import utcnow

A = AuditEntry.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Actor:
    """Who acts: a label naming the kind and id ("staff:12", "key:gc_ab12"), their agency, their address."""

    label: str
    agency_id: int | None = None
    client_address: str = ""

    @classmethod
    def staff(cls, user: StaffUser, client_address: str = "") -> Actor:
        """A signed-in staff member."""
        return cls(f"staff:{user.id}", user.agency_id, client_address)

    @classmethod
    def api_key(cls, key: ApiKey, client_address: str = "") -> Actor:
        """An agency acting through an API key (named by its display prefix, never the key)."""
        return cls(f"key:{key.prefix}", key.agency_id, client_address)

    @classmethod
    def system(cls, name: str, agency_id: int | None = None) -> Actor:
        """The application itself (the sweeper, the fan-out, the scheduler)."""
        return cls(f"system:{name}", agency_id)

    @classmethod
    def cli(cls, agency_id: int | None = None) -> Actor:
        """An operator at the server's command line."""
        return cls("cli", agency_id, "local")


def _plain(changes: dict[str, Any] | None) -> dict[str, Any]:
    # Dates and other values become JSON text, so every backend stores the same thing.
    return dict(json.loads(json.dumps(changes or {}, default=str, ensure_ascii=False)))


def record_audit(
    db: Connection | Session,
    actor: Actor,
    action: str,
    target_type: str = "",
    target_id: str | int = "",
    changes: dict[str, Any] | None = None,
    agency_id: int | None = None,
    moment: datetime | None = None,
) -> None:
    """Append one audit row in the caller's transaction (it commits or rolls back with the change)."""
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    conn = db.connection() if isinstance(db, Session) else db
    conn.execute(
        insert(A).values(
            at=moment or utcnow(),
            agency_id=agency_id if agency_id is not None else actor.agency_id,
            actor=actor.label[:80],
            client_address=actor.client_address[:64],
            action=action,
            target_type=target_type,
            target_id=str(target_id)[:64],
            changes=_plain(changes),
        )
    )
