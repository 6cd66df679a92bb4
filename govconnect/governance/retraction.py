"""Retraction (撤回) and correction (更正).

A retracted notice leaves every public surface at once (they show only visible statuses; the
feeds' ETag covers each notice's status), its undelivered deliveries are cancelled in the same
transaction, and a job deletes its Weibo post (`2/statuses/destroy.json`), retrying while Weibo
is busy. A correction is a new notice that links to the original and goes through sign-off itself.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from sqlmodel import select as orm_select

from channels.weibo import Weibo
from govconnect.agencies.models import Agency
from govconnect.audit.record import Actor, record_audit
from govconnect.errors import Conflict
from govconnect.jobs import job
from govconnect.notices.gate import change_status
from govconnect.notices.models import VISIBLE_STATUSES, Notice
from govconnect.notices.pipeline_models import Delivery
from govconnect.notices.policy import run_db
from govconnect.notices.providers import get_providers
from govconnect.notices.service import cancel_queued_deliveries, get_notice

log = logging.getLogger("govconnect.governance")
D = Delivery.__table__  # type: ignore[attr-defined]
WEIBO_REMOVER = Actor.system("weibo")
MAX_DELETE_ATTEMPTS = 20


def retract(session: Session, agency: Agency, notice_id: str, actor: Actor, reason: str, moment: datetime) -> Notice:
    """Withdraw a notice: off the public surfaces, undelivered deliveries cancelled (the caller deletes Weibo posts)."""
    notice = get_notice(session, agency, notice_id)
    change_status(
        session,
        notice.id,
        "retracted",
        actor,
        values={"retracted_at": moment, "retracted_reason": reason},
        changes={"reason": reason},
        moment=moment,
    )
    cancelled = cancel_queued_deliveries(session, notice.id, moment)
    session.commit()
    session.refresh(notice)
    log.info("notice %s retracted (%d deliveries cancelled)", notice.id, cancelled)
    return notice


def weibo_posts(engine: Engine, notice_id: str) -> list[str]:
    """Ids of the Weibo posts a notice made."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(D.c.provider_id).where(
                D.c.notice_id == notice_id, D.c.channel == "weibo", D.c.provider_id.is_not(None)
            )
        ).all()
    return [str(row[0]) for row in rows]


def _record_deletion(engine: Engine, notice: Any, post_id: str, outcome: dict[str, Any]) -> None:
    with engine.begin() as conn:
        record_audit(
            conn,
            WEIBO_REMOVER,
            "retract",
            "weibo_post",
            post_id,
            {"notice_id": notice.id, **outcome},
            agency_id=notice.agency_id,
        )


@job
async def delete_weibo_posts(ctx: dict[str, Any], notice_id: str, attempt: int = 1) -> dict[str, int]:
    """Delete the Weibo posts of a retracted notice; retried later while Weibo is busy or down."""
    engine: Engine = ctx["engine"]
    notice = await run_db(_load_retracted, engine, notice_id)
    if notice is None:
        return {"deleted": 0}
    adapter = get_providers(ctx).adapters.get("weibo")
    posts = await run_db(weibo_posts, engine, notice_id)
    if not isinstance(adapter, Weibo):
        if posts:
            log.warning("notice %s: Weibo is not configured, %d posts not deleted", notice_id, len(posts))
        return {"deleted": 0}
    deleted, again = 0, False
    delay = 5.0
    for post_id in posts:
        outcome = await adapter.delete_post(post_id)
        if outcome.done:
            deleted += 1
            await run_db(_record_deletion, engine, notice, post_id, {"deleted": True})
        elif outcome.retryable and attempt < MAX_DELETE_ATTEMPTS:
            again = True
            delay = max(delay, outcome.retry_after or 0.0)
        else:
            await run_db(_record_deletion, engine, notice, post_id, {"deleted": False, "error": outcome.code})
            log.warning("notice %s: Weibo post not deleted (%s)", notice_id, outcome.code)
    if again:
        await ctx["queue"].enqueue("delete_weibo_posts", notice_id=notice_id, attempt=attempt + 1, defer_by=delay)
    return {"deleted": deleted}


def _load_retracted(engine: Engine, notice_id: str) -> Any:
    N = Notice.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return conn.execute(select(N.c.id, N.c.agency_id).where(N.c.id == notice_id, N.c.status == "retracted")).first()


def correction_of(session: Session, original: Notice) -> Notice | None:
    """The visible notice that corrects this one, if any (the newest)."""
    return session.exec(
        orm_select(Notice)
        .where(Notice.corrects_id == original.id, col(Notice.status).in_(VISIBLE_STATUSES))
        .order_by(col(Notice.created_at).desc())
    ).first()


def check_correctable(session: Session, agency: Agency, notice_id: str) -> Notice:
    """The agency's notice to correct: it must have gone out (a draft is edited, not corrected)."""
    original = get_notice(session, agency, notice_id)
    if original.status not in ("sending", "completed", "failed", "retracted", "accepted", "approved"):
        raise Conflict(
            "not_correctable",
            "只能更正已发出的通知；未发出的请直接修改 / Only a notice that went out can be corrected; edit it instead",
            {"status": original.status},
        )
    return original
