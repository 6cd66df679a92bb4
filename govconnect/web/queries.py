"""Which notices the public surfaces show: public, not cancelled, already due; filters by category and region."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from govconnect.clock import utcnow
from govconnect.notices.models import VISIBLE_STATUSES, Category, Notice

URGENT_WINDOW = timedelta(hours=24)
# How many recent public notices to look at when filtering by region (a JSON list column).
SCAN_LIMIT = 500


def is_visible(notice: Notice, now: datetime | None = None) -> bool:
    """True when a notice may be shown publicly now."""
    now = now or utcnow()
    return (
        notice.public
        and notice.status in VISIBLE_STATUSES
        and notice.cancelled_at is None
        and (notice.send_at is None or notice.send_at <= now)
    )


def in_region(notice: Notice, region: str | None) -> bool:
    """A notice without regions is for the whole city, so it matches every region."""
    return not region or not notice.regions or region in notice.regions


def public_notices(
    session: Session,
    category: str | None = None,
    region: str | None = None,
    limit: int = 20,
    surface: str | None = None,
) -> list[Notice]:
    """Latest visible public notices, newest first; `surface` ('tv', 'site', 'weibo') keeps those flagged for it."""
    now = utcnow()
    query = select(Notice).where(col(Notice.public), col(Notice.status).in_(VISIBLE_STATUSES))
    if category:
        query = query.where(Notice.category == category)
    rows = session.exec(query.order_by(col(Notice.created_at).desc()).limit(SCAN_LIMIT)).all()
    out: list[Notice] = []
    for notice in rows:
        if not is_visible(notice, now) or not in_region(notice, region):
            continue
        if surface and surface not in notice.channels:
            continue
        out.append(notice)
        if len(out) >= limit:
            break
    return out


def urgent_notices(session: Session, region: str | None = None, surface: str | None = None) -> list[Notice]:
    """Visible urgent notices of the last 24 hours, newest first."""
    since = utcnow() - URGENT_WINDOW
    rows = session.exec(
        select(Notice)
        .where(col(Notice.public), Notice.urgency == "urgent", col(Notice.created_at) >= since)
        .order_by(col(Notice.created_at).desc())
        .limit(20)
    ).all()
    return [n for n in rows if is_visible(n) and in_region(n, region) and (not surface or surface in n.channels)]


def visible_notice(session: Session, notice_id: str) -> Notice | None:
    """A public notice by id, or None when it is unknown, private, cancelled or not yet due."""
    notice = session.get(Notice, notice_id) if len(notice_id) <= 32 else None
    return notice if notice is not None and is_visible(notice) else None


def retracted_public_notice(session: Session, notice_id: str) -> Notice | None:
    """A public notice that was retracted (its page answers 410 with the reason), else None."""
    notice = session.get(Notice, notice_id) if len(notice_id) <= 32 else None
    return notice if notice is not None and notice.public and notice.status == "retracted" else None


def category_names(session: Session) -> dict[str, str]:
    """Category code → Chinese name, for every category ever defined."""
    return {c.code: c.name for c in session.exec(select(Category)).all()}


def notices_by_ids(session: Session, ids: Sequence[str]) -> list[Notice]:
    """Visible notices among these ids, in the given order."""
    if not ids:
        return []
    found = {n.id: n for n in session.exec(select(Notice).where(col(Notice.id).in_(list(ids)))).all()}
    return [found[i] for i in ids if i in found and is_visible(found[i])]


def last_changed(notices: Sequence[Notice]) -> datetime | None:
    """The latest creation/publication time among notices, for Last-Modified."""
    stamps = [t for n in notices for t in (n.created_at, n.published_at) if t is not None]
    return max(stamps) if stamps else None
