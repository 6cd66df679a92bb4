"""Which notices the public surfaces show: public, not cancelled, already due; filters by category and region.

Lists come back as `PublicNotice` views (notices/publication.py): public text, publishing regions
and the time each went out, so no surface can show a placeholder or a wrong region by mistake.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlmodel import Session, col, select

from govconnect.clock import utcnow
from govconnect.notices.models import VISIBLE_STATUSES, Category, Notice
from govconnect.notices.publication import PublicNotice, public_view, publishing_regions

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
    """A notice for no region (publishing regions, audience's included) is for the whole city: it matches every one."""
    if not region:
        return True
    regions = publishing_regions(notice.regions or [], notice.audience or {})
    return not regions or region in regions


def _shown(notice: Notice, region: str | None, surface: str | None, now: datetime) -> bool:
    return is_visible(notice, now) and in_region(notice, region) and (not surface or surface in notice.channels)


def _newest_first(notices: Sequence[PublicNotice]) -> list[PublicNotice]:
    return sorted(notices, key=lambda n: n.published, reverse=True)


def public_notices(
    session: Session,
    category: str | None = None,
    region: str | None = None,
    limit: int = 20,
    surface: str | None = None,
) -> list[PublicNotice]:
    """Latest visible public notices, newest publication first; `surface` ('tv', 'site', 'weibo') keeps its own."""
    now = utcnow()
    query = select(Notice).where(col(Notice.public), col(Notice.status).in_(VISIBLE_STATUSES))
    if category:
        query = query.where(Notice.category == category)
    rows = session.exec(query.order_by(col(Notice.created_at).desc()).limit(SCAN_LIMIT)).all()
    out = [public_view(n) for n in rows if _shown(n, region, surface, now)]
    return _newest_first(out)[:limit]


def urgent_notices(session: Session, region: str | None = None, surface: str | None = None) -> list[PublicNotice]:
    """Visible urgent notices published in the last 24 hours, newest first."""
    since = utcnow() - URGENT_WINDOW
    rows = session.exec(
        select(Notice)
        .where(col(Notice.public), Notice.urgency == "urgent")
        .where(or_(col(Notice.created_at) >= since, col(Notice.send_at) >= since))
        .order_by(col(Notice.created_at).desc())
        .limit(20)
    ).all()
    shown = [public_view(n) for n in rows if _shown(n, region, surface, utcnow())]
    return [n for n in _newest_first(shown) if n.published >= since]


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


def notices_by_ids(session: Session, ids: Sequence[str]) -> list[PublicNotice]:
    """Visible notices among these ids, in the given order."""
    if not ids:
        return []
    found = {n.id: n for n in session.exec(select(Notice).where(col(Notice.id).in_(list(ids)))).all()}
    return [public_view(found[i]) for i in ids if i in found and is_visible(found[i])]


def last_changed(notices: Sequence[PublicNotice]) -> datetime | None:
    """The latest publication time among notices, for Last-Modified."""
    return max((n.published for n in notices), default=None)
