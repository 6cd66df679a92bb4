"""Sign-off (审核): submit, approve (N approvers, never the drafter), reject, edit, after-the-fact review.

Each function checks, changes status through the gate, audits, and commits; queuing the fan-out
and telling people is the caller's part (`governance/api.py`), after the commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.audit.record import Actor, record_audit
from govconnect.errors import Conflict, Forbidden
from govconnect.governance.policy import dispose, get_policy
from govconnect.message_templates.service import drop_text_variants
from govconnect.notices.gate import InvalidTransition, change_status
from govconnect.notices.models import EDITABLE_STATUSES, Notice, NoticeApproval
from govconnect.notices.pipeline_models import NoticeOutbox
from govconnect.notices.schemas import NoticeCreate
from govconnect.notices.service import get_notice, validate_notice
from govconnect.reports.rollup import count_approval
from govconnect.settings import Settings

N = Notice.__table__  # type: ignore[attr-defined]
AP = NoticeApproval.__table__  # type: ignore[attr-defined]
O = NoticeOutbox.__table__  # type: ignore[attr-defined]  # noqa: E741


def _drafters(notice: Notice) -> set[str]:
    # Whoever created the notice, and whoever last submitted or edited it, drafted it.
    return {notice.created_by, notice.status_changed_by} if notice.status == "pending_approval" else {notice.created_by}


def _refuse_self(notice: Notice, actor: Actor, what: str) -> None:
    if actor.label in _drafters(notice):
        english = "approve" if what == "审核" else "review"
        raise Forbidden(
            "self_approval",
            f"起草人不能{what}自己的通知 / The drafter cannot {english} their own notice",
            {"drafter": notice.created_by},
        )


def _ready_status(notice: Notice, moment: datetime) -> str:
    return "scheduled" if notice.send_at is not None and notice.send_at > moment else "accepted"


def _open_outbox(session: Session, notice: Notice, moment: datetime) -> None:
    existing = session.connection().execute(select(O.c.id).where(O.c.notice_id == notice.id, O.c.kind == "fanout"))
    if existing.first() is None:
        session.add(NoticeOutbox(notice_id=notice.id, kind="fanout", created_at=moment, enqueued_at=moment))


def _back_to_draft(session: Session, notice_id: str) -> None:
    """A notice returning to draft loses its approvals and its unstarted fan-out."""
    session.connection().execute(delete(AP).where(AP.c.notice_id == notice_id))
    session.connection().execute(delete(O).where(O.c.notice_id == notice_id, O.c.done_at.is_(None), O.c.cursor == ""))


def submit(session: Session, agency: Agency, notice_id: str, actor: Actor, moment: datetime) -> Notice:
    """Submit a draft: to pending_approval when the policy asks for sign-off, else straight on its way."""
    notice = get_notice(session, agency, notice_id)
    if notice.status != "draft":
        raise InvalidTransition(notice.status, "pending_approval")
    disposition = dispose(
        get_policy(session, agency.id or 0), notice.channels, notice.recipient_count, notice.urgency == "urgent", moment
    )
    if disposition.needs_approval:
        change_status(session, notice.id, "pending_approval", actor, only_from=("draft",), moment=moment)
    else:
        values = {"review_due_at": disposition.review_due_at}
        change_status(session, notice.id, _ready_status(notice, moment), actor, values=values, moment=moment)
        _open_outbox(session, notice, moment)
    session.commit()
    session.refresh(notice)
    return notice


def approve(session: Session, agency: Agency, notice_id: str, actor: Actor, moment: datetime) -> tuple[Notice, int]:
    """Record one approver's sign-off; with enough of them the notice is approved. (notice, approvals still needed)."""
    notice = get_notice(session, agency, notice_id)
    if notice.status != "pending_approval":
        raise InvalidTransition(notice.status, "approved")
    _refuse_self(notice, actor, "审核")
    session.add(NoticeApproval(notice_id=notice.id, approver=actor.label, created_at=moment))
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(
            "already_approved",
            "您已审核过该通知 / You have already approved this notice",
            {"approver": actor.label},
        ) from exc
    count = int(session.connection().execute(select(func.count()).where(AP.c.notice_id == notice.id)).scalar_one())
    needed = get_policy(session, agency.id or 0).approvers
    if count >= needed:
        submitted_at = notice.status_changed_at or notice.created_at  # when it entered pending_approval
        change_status(
            session, notice.id, "approved", actor, changes={"approvals": count, "needed": needed}, moment=moment
        )
        count_approval(session.connection(), agency.id or 0, moment, (moment - submitted_at).total_seconds())
        _open_outbox(session, notice, moment)
    else:
        record_audit(session, actor, "approve", "notice", notice.id, {"approvals": count, "needed": needed})
    session.commit()
    session.refresh(notice)
    return notice, max(0, needed - count)


def reject(session: Session, agency: Agency, notice_id: str, actor: Actor, reason: str, moment: datetime) -> Notice:
    """Send a pending notice back to its drafter with a reason."""
    notice = get_notice(session, agency, notice_id)
    values = {"rejected_reason": reason}
    change_status(session, notice.id, "rejected", actor, values=values, changes={"reason": reason}, moment=moment)
    session.connection().execute(delete(AP).where(AP.c.notice_id == notice.id))
    session.commit()
    session.refresh(notice)
    return notice


def review(session: Session, agency: Agency, notice_id: str, actor: Actor, moment: datetime) -> Notice:
    """Record the after-the-fact review of an urgent notice that went without sign-off."""
    notice = get_notice(session, agency, notice_id)
    if notice.review_due_at is None or notice.reviewed_at is not None:
        raise Conflict(
            "no_review_due", "该通知无待办的事后审核 / The notice has no review due", {"status": notice.status}
        )
    _refuse_self(notice, actor, "复核")
    session.connection().execute(
        update(N)
        .where(N.c.id == notice.id, N.c.reviewed_at.is_(None))
        .values(reviewed_at=moment, reviewed_by=actor.label)
    )
    overdue = moment > notice.review_due_at
    record_audit(session, actor, "review", "notice", notice.id, {"overdue": overdue}, moment=moment)
    session.commit()
    session.refresh(notice)
    return notice


EDITABLE_FIELDS = ("title", "body", "category", "regions", "urgency", "channels", "audience", "send_at")


def edit(
    session: Session,
    agency: Agency,
    notice_id: str,
    changes: dict[str, Any],
    settings: Settings,
    actor: Actor,
    moment: datetime,
) -> Notice:
    """Change a notice that has not started: a pending, approved or rejected one goes back to draft."""
    notice = get_notice(session, agency, notice_id)
    if notice.status not in EDITABLE_STATUSES:
        raise Conflict(
            "not_editable",
            "通知已开始发送，不能修改 / The notice has started and cannot change",
            {"status": notice.status},
        )
    if notice.status == "scheduled" and (notice.send_at is None or notice.send_at <= moment):
        raise Conflict("not_editable", "定时通知已开始 / The scheduled notice has started", {"status": "scheduled"})
    current = {name: getattr(notice, name) for name in EDITABLE_FIELDS}
    merged = NoticeCreate.model_validate({**current, **changes})
    checked = validate_notice(session, agency, merged, settings, moment)
    new_values = {
        "title": merged.title,
        "body": merged.body,
        "category": merged.category,
        "regions": merged.regions,
        "urgency": merged.urgency,
        "channels": checked.channels,
        "audience": merged.audience.model_dump(exclude_none=True),
        "send_at": checked.send_at,
    }
    changed = sorted(name for name in EDITABLE_FIELDS if new_values[name] != current[name])
    if "body" in changed:
        drop_text_variants(session, notice.id)  # else the template's old wording would still be sent
    session.connection().execute(
        update(N)
        .where(N.c.id == notice.id, N.c.status == notice.status)
        .values(
            **new_values,
            public=checked.public,
            recipient_count=checked.count,
        )
    )
    audit_changes = {"fields": changed}
    if notice.status in ("pending_approval", "approved", "rejected"):
        change_status(session, notice.id, "draft", actor, changes=audit_changes, moment=moment)
        _back_to_draft(session, notice.id)
    elif notice.status == "scheduled":
        disposition = dispose(
            get_policy(session, agency.id or 0),
            checked.channels,
            checked.count,
            merged.urgency == "urgent",
            moment,
        )
        if disposition.needs_approval:
            change_status(session, notice.id, "pending_approval", actor, changes=audit_changes, moment=moment)
            _back_to_draft(session, notice.id)
        elif checked.send_at is None or checked.send_at <= moment:
            change_status(session, notice.id, "accepted", actor, changes=audit_changes, moment=moment)
        else:
            record_audit(session, actor, "edit", "notice", notice.id, audit_changes, moment=moment)
    else:
        record_audit(session, actor, "edit", "notice", notice.id, audit_changes, moment=moment)
    session.commit()
    session.refresh(notice)
    return notice
