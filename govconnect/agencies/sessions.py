"""Server-side staff sessions: the cookie names a random session id, the database says whether it is live.

Signing out, disabling the account or changing its password ends the session on the server, so a
captured cookie stops working at once. The table stores only a SHA-256 of the id (a database
reader cannot sign in with it) and a fingerprint of the password hash (never sent to the browser).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from govconnect.agencies.models import StaffUser
from govconnect.clock import utcnow

SESSION_LIFETIME = timedelta(hours=12)


class StaffSession(SQLModel, table=True):
    """One signed-in browser of a staff member."""

    __tablename__ = "staff_session"

    id_hash: str = Field(primary_key=True, max_length=64)
    staff_id: int = Field(foreign_key="staff_user.id", index=True)
    credential_fp: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)
    revoked_at: datetime | None = None


def _hash_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


def credential_fingerprint(user: StaffUser) -> str:
    """A value that changes when the password hash changes (kept server-side only)."""
    return hashlib.sha256(user.password_hash.encode("utf-8")).hexdigest()


def open_session(db: Session, user: StaffUser) -> str:
    """Record a new session for this staff member and return its id (for the cookie only)."""
    assert user.id is not None
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    # Expired rows are dropped as new ones arrive: the table holds only live sessions and a day's history.
    db.exec(delete(StaffSession).where(col(StaffSession.expires_at) < now - timedelta(days=1)))
    db.add(
        StaffSession(
            id_hash=_hash_id(session_id),
            staff_id=user.id,
            credential_fp=credential_fingerprint(user),
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    return session_id


def revoke_session(db: Session, session_id: str) -> None:
    """End one session (sign-out)."""
    db.exec(
        update(StaffSession)
        .where(col(StaffSession.id_hash) == _hash_id(session_id), col(StaffSession.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


def revoke_all_sessions(db: Session, staff_id: int) -> None:
    """End every session of a staff member (password reset, account disabled)."""
    db.exec(
        update(StaffSession)
        .where(col(StaffSession.staff_id) == staff_id, col(StaffSession.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


def session_user(engine: Engine, session_id: str) -> StaffUser | None:
    """The active staff member of a live session, or None (unknown, revoked, expired, password changed)."""
    with Session(engine, expire_on_commit=False) as db:
        row = db.exec(
            select(StaffSession, StaffUser)
            .join(StaffUser, StaffUser.id == StaffSession.staff_id)  # type: ignore[arg-type]
            .where(StaffSession.id_hash == _hash_id(session_id))
        ).first()
    if row is None:
        return None
    record, user = row
    expires = record.expires_at if record.expires_at.tzinfo else record.expires_at.replace(tzinfo=utcnow().tzinfo)
    if record.revoked_at is not None or expires <= utcnow() or not user.active:
        return None
    if not secrets.compare_digest(record.credential_fp.encode(), credential_fingerprint(user).encode()):
        return None
    return user
