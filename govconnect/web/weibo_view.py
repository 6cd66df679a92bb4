"""The official microblog on the site: what the pipeline's Weibo channel posted, and, for operators, what failed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from channels.weibo import compose_status
from govconnect.clock import utcnow
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import Delivery
from govconnect.notices.publication import public_text


@dataclass(frozen=True)
class WeiboPost:
    """One post of the official account, or one attempt at it."""

    delivery_id: str
    notice_id: str
    text: str
    url: str
    status: str
    attempts: int
    error: str
    created_at: datetime


def _posts(session: Session, query: Any, base_url: str) -> list[WeiboPost]:
    out = []
    for delivery, notice in session.exec(query).all():
        link = f"{base_url.rstrip('/')}/m/notices/{notice.id}"
        out.append(
            WeiboPost(
                delivery_id=delivery.id,
                notice_id=notice.id,
                text=compose_status(public_text(notice.body), link, title=public_text(notice.title)),
                url=f"/m/notices/{notice.id}",
                status=delivery.status,
                attempts=delivery.attempts,
                error=delivery.error_code or "",
                created_at=delivery.sent_at or delivery.created_at,
            )
        )
    return out


def recent_posts(session: Session, base_url: str, limit: int = 20) -> list[WeiboPost]:
    """Posts the account published (accepted by Weibo), newest first."""
    query = (
        select(Delivery, Notice)
        .join(Notice, col(Notice.id) == col(Delivery.notice_id))
        .where(Delivery.channel == "weibo", col(Delivery.sent_at).is_not(None), col(Notice.public))
        .where(col(Notice.status) != "cancelled")
        .order_by(col(Delivery.sent_at).desc())
        .limit(limit)
    )
    return _posts(session, query, base_url)


def agency_posts(session: Session, agency_id: int, base_url: str, limit: int = 50) -> list[WeiboPost]:
    """An agency's Weibo posts in every state (queued with an error = being retried, failed), newest first."""
    query = (
        select(Delivery, Notice)
        .join(Notice, col(Notice.id) == col(Delivery.notice_id))
        .where(Delivery.channel == "weibo", Notice.agency_id == agency_id)
        .order_by(col(Delivery.created_at).desc())
        .limit(limit)
    )
    return _posts(session, query, base_url)


def requeue_failed_post(session: Session, agency_id: int, delivery_id: str, deadline_seconds: float) -> str | None:
    """Put a failed post of this agency back in the queue; returns its notice id, or None when not allowed."""
    row = session.exec(
        select(Delivery, Notice)
        .join(Notice, col(Notice.id) == col(Delivery.notice_id))
        .where(Delivery.id == delivery_id, Delivery.channel == "weibo", Notice.agency_id == agency_id)
    ).first()
    if row is None or row[0].status != "failed" or row[1].status == "cancelled":
        return None
    now = utcnow()
    session.execute(
        update(Delivery)
        .where(col(Delivery.id) == delivery_id, col(Delivery.status) == "failed")
        .values(
            status="queued",
            attempts=0,
            next_attempt_at=now,
            deadline_at=now + timedelta(seconds=deadline_seconds),
            final_at=None,
            error_code=None,
            error_reason=None,
            updated_at=now,
        )
    )
    session.commit()
    return row[1].id
