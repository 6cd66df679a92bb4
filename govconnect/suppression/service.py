"""The one suppression list: numbers that get no normal notice from any agency, whatever the audience.

Entries come from an opt-out reply (T/TD/退订/取消) on any SMS provider, from operators (API), and
from `subscribers purge` (a purged subscriber leaves only the keyed hash). Numbers are stored as
HMAC-SHA256 under SECRET_KEY, so the list reveals nobody and still matches every later send.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from govconnect.citizens.optout import normalise_phone
from govconnect.clock import utcnow
from govconnect.errors import NotFound
from govconnect.security import mask_phone
from govconnect.suppression.models import Suppression

log = logging.getLogger("govconnect.suppression")
SUP = Suppression.__table__  # type: ignore[attr-defined]


def phone_key(secret: str, phone: str) -> str:
    """The keyed hash that stands for a number in the suppression list and the daily counts."""
    return hmac.new(secret.encode(), f"phone:{normalise_phone(phone)}".encode(), hashlib.sha256).hexdigest()


def suppress(
    session: Session, secret: str, phone: str, source: str, reason: str = "", agency_id: int | None = None
) -> tuple[Suppression, bool]:
    """Put a number on the list (idempotent); (entry, created). The caller commits."""
    key = phone_key(secret, phone)
    existing = entry_by_key(session, key)
    if existing is not None:
        return existing, False
    entry = Suppression(
        phone_hash=key,
        phone_hint=mask_phone(normalise_phone(phone)),
        source=source[:32],
        reason=reason[:200],
        agency_id=agency_id,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(entry)
    except IntegrityError:  # the same number suppressed concurrently
        existing = entry_by_key(session, key)
        if existing is None:
            raise
        return existing, False
    log.info("suppression %s added from %s", entry.id, entry.source)
    return entry, True


def suppress_keys(session: Session, keys: Iterable[str], source: str) -> int:
    """Add already-hashed numbers (a purge keeps only these); returns how many were new."""
    added = 0
    for key in keys:
        if entry_by_key(session, key) is None:
            session.add(Suppression(phone_hash=key, phone_hint="", source=source, created_at=utcnow()))
            added += 1
    session.flush()
    return added


def entry_by_key(session: Session, key: str) -> Suppression | None:
    """The entry for a hashed number, if any."""
    return session.exec(select(Suppression).where(SUP.c.phone_hash == key)).scalars().first()  # type: ignore[call-overload]


def entry_by_id(session: Session, entry_id: int) -> Suppression | None:
    """The entry with this id, if any."""
    return session.get(Suppression, entry_id)


def is_suppressed(session: Session, secret: str, phone: str) -> bool:
    """True when the number is on the list."""
    return entry_by_key(session, phone_key(secret, phone)) is not None


def removable_entry(session: Session, entry_id: int, agency_id: int | None) -> Suppression:
    """An entry this agency may take off the list: one its own operators added (NotFound otherwise).

    A citizen's own opt-out (an SMS reply) or another agency's entry is not theirs to lift: the
    citizen lifts it by subscribing again with a verified code.
    """
    entry = entry_by_id(session, entry_id)
    if entry is None or entry.source != "operator" or entry.agency_id != agency_id:
        raise NotFound()
    return entry


def remove(session: Session, entry: Suppression) -> None:
    """Take an entry off the list (the caller commits and audits)."""
    session.execute(delete(SUP).where(SUP.c.id == entry.id))
    log.info("suppression %s removed", entry.id)


def lift(session: Session, secret: str, phone: str) -> bool:
    """Take a number off the list because its owner subscribed again with a verified code."""
    entry = entry_by_key(session, phone_key(secret, phone))
    if entry is None:
        return False
    remove(session, entry)
    log.info("suppression %s lifted: the number subscribed again", entry.id)
    return True


def suppressed_among(conn: Connection, keys: Iterable[str]) -> set[str]:
    """Which of these hashed numbers are on the list (one indexed query)."""
    wanted = list(set(keys))
    if not wanted:
        return set()
    found: set[str] = set()
    for i in range(0, len(wanted), 1000):
        found.update(conn.execute(select(SUP.c.phone_hash).where(SUP.c.phone_hash.in_(wanted[i : i + 1000]))).scalars())
    return found


def list_entries(session: Session, limit: int, offset: int, phone_hash: str | None = None) -> tuple[list[Any], int]:
    """A page of entries, newest first, and the total (optionally only the entry for one number)."""
    query = select(Suppression)
    count = select(func.count()).select_from(SUP)
    if phone_hash is not None:
        query = query.where(SUP.c.phone_hash == phone_hash)
        count = count.where(SUP.c.phone_hash == phone_hash)
    rows = session.exec(query.order_by(SUP.c.created_at.desc(), SUP.c.id.desc()).limit(limit).offset(offset))  # type: ignore[call-overload]
    total = session.exec(count).scalar_one()  # type: ignore[call-overload]
    return list(rows.scalars().all()), int(total)
