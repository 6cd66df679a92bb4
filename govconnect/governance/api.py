"""Governance API: the agency's sign-off policy, submit/approve/reject/review, edit, retract, correct, schedules."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from govconnect.api.deps import Principal, SessionDep, SettingsDep, actor_for, require_scope
from govconnect.api.params import RowId
from govconnect.clock import utcnow
from govconnect.errors import ApiError
from govconnect.governance import retraction, schedules, signoff
from govconnect.governance.models import AgencyPolicy, NoticeSchedule
from govconnect.governance.policy import get_policy, set_policy
from govconnect.governance.schemas import (
    CorrectionCreate,
    NoticeUpdate,
    PolicyPublic,
    PolicyUpdate,
    Reason,
    ScheduleCreate,
    SchedulePublic,
)
from govconnect.notices import service
from govconnect.notices.intake import accept_and_enqueue, dispatch, enqueue_fanout
from govconnect.notices.models import Notice
from govconnect.notices.schemas import NoticePublic

log = logging.getLogger("govconnect.governance")
router = APIRouter(prefix="/api/v1", tags=["governance"])
Admin = Annotated[Principal, Depends(require_scope("admin"))]
Sender = Annotated[Principal, Depends(require_scope("notices:send"))]
Approver = Annotated[Principal, Depends(require_scope("notices:approve"))]
Reader = Annotated[Principal, Depends(require_scope("notices:read"))]


def _policy_public(policy: AgencyPolicy) -> PolicyPublic:
    return PolicyPublic.model_validate(policy, from_attributes=True)


@router.get("/agencies/me/policy", response_model=PolicyPublic, summary="The agency's sign-off policy")
def policy_get(principal: Admin, session: SessionDep) -> PolicyPublic:
    """Which notices need approval, by how many approvers, and whether urgent ones may go at once."""
    return _policy_public(get_policy(session, principal.agency.id or 0))


@router.put("/agencies/me/policy", response_model=PolicyPublic, summary="Change the sign-off policy")
def policy_put(request: Request, body: PolicyUpdate, principal: Admin, session: SessionDep) -> PolicyPublic:
    """Change the given fields of the policy (audited)."""
    values = body.model_dump(exclude_none=True)
    policy = set_policy(session, principal.agency.id or 0, actor_for(principal, request), **values)
    session.commit()
    return _policy_public(policy)


def _answer(session: SessionDep, notice: Notice, status_code: int = 200) -> JSONResponse:
    payload = service.notice_public(session, notice, with_progress=False)
    return JSONResponse(payload.model_dump(mode="json"), status_code=status_code)


@router.post("/notices/{notice_id}/submit", response_model=NoticePublic, summary="Submit a draft for sign-off")
async def notice_submit(
    request: Request, notice_id: str, principal: Sender, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    """A draft goes to pending_approval (approvers are told), or on its way when no sign-off is needed."""
    actor = actor_for(principal, request)
    notice = await run_in_threadpool(signoff.submit, session, principal.agency, notice_id, actor, utcnow())
    await dispatch(request.app.state.queue, session, principal.agency, notice, settings)
    return _answer(session, notice, 202)


@router.post("/notices/{notice_id}/approve", response_model=NoticePublic, summary="Approve a pending notice")
async def notice_approve(request: Request, notice_id: str, principal: Approver, session: SessionDep) -> JSONResponse:
    """One approver's sign-off (never the drafter's); with as many as the policy asks, the notice goes."""
    actor = actor_for(principal, request)
    notice, missing = await run_in_threadpool(signoff.approve, session, principal.agency, notice_id, actor, utcnow())
    if missing == 0:
        await enqueue_fanout(request.app.state.queue, notice, utcnow())
    response = _answer(session, notice)
    response.headers["X-Approvals-Missing"] = str(missing)
    return response


@router.post("/notices/{notice_id}/reject", response_model=NoticePublic, summary="Send a pending notice back")
def notice_reject(
    request: Request, notice_id: str, body: Reason, principal: Approver, session: SessionDep
) -> JSONResponse:
    """Reject with a reason; the drafter may edit it (back to draft) and submit again."""
    actor = actor_for(principal, request)
    notice = signoff.reject(session, principal.agency, notice_id, actor, body.reason, utcnow())
    return _answer(session, notice)


@router.post(
    "/notices/{notice_id}/review", response_model=NoticePublic, summary="Review an urgent notice after the fact"
)
def notice_review(request: Request, notice_id: str, principal: Approver, session: SessionDep) -> JSONResponse:
    """Record the mandatory review of an urgent notice that went without sign-off."""
    notice = signoff.review(session, principal.agency, notice_id, actor_for(principal, request), utcnow())
    return _answer(session, notice)


@router.patch("/notices/{notice_id}", response_model=NoticePublic, summary="Edit a notice that has not started")
async def notice_edit(
    request: Request, notice_id: str, body: NoticeUpdate, principal: Sender, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    """Edit a draft, pending, rejected, approved or scheduled notice; a pending or approved one returns to draft."""
    changes = body.model_dump(exclude_unset=True, mode="json")
    if not changes:
        raise ApiError(422, "validation_error", "没有要修改的字段 / Nothing to change")
    actor = actor_for(principal, request)
    notice = await run_in_threadpool(
        signoff.edit, session, principal.agency, notice_id, changes, settings, actor, utcnow()
    )
    if notice.status == "pending_approval":
        await dispatch(request.app.state.queue, session, principal.agency, notice, settings)
    else:
        await enqueue_fanout(request.app.state.queue, notice, utcnow())  # send_at may have moved earlier
    return _answer(session, notice)


@router.post("/notices/{notice_id}/retract", response_model=NoticePublic, summary="Retract a notice (撤回)")
async def notice_retract(
    request: Request, notice_id: str, body: Reason, principal: Sender, session: SessionDep
) -> JSONResponse:
    """Withdraw a notice everywhere: public surfaces, undelivered deliveries, and its Weibo post."""
    actor = actor_for(principal, request)
    notice = await run_in_threadpool(
        retraction.retract, session, principal.agency, notice_id, actor, body.reason, utcnow()
    )
    try:
        await request.app.state.queue.enqueue("delete_weibo_posts", notice_id=notice.id)
    except Exception:  # noqa: BLE001 - the retraction is committed; the public surfaces already dropped it
        log.warning("notice %s: queuing the Weibo deletion failed", notice.id, exc_info=True)
    return _answer(session, notice)


@router.post(
    "/notices/{notice_id}/correct", status_code=202, response_model=NoticePublic, summary="Correct a notice (更正)"
)
async def notice_correct(
    request: Request,
    notice_id: str,
    body: CorrectionCreate,
    principal: Sender,
    session: SessionDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Create a correcting notice linked to the original; it needs its own sign-off under the policy."""
    original = retraction.check_correctable(session, principal.agency, notice_id)
    data = body.model_dump(exclude={"resend"})
    if body.resend:
        # The original's audience, on the personal channels the original used.
        data["audience"] = original.audience
        data["channels"] = list(
            dict.fromkeys([*body.channels, *(c for c in original.channels if c in ("sms", "wechat"))])
        )
    request_data = CorrectionCreate.model_validate(data)
    notice, _created = await accept_and_enqueue(
        request.app.state.queue,
        session,
        principal.agency,
        request_data,
        None,
        settings,
        utcnow(),
        actor_for(principal, request),
        corrects=original,
        sees_staff_contacts=principal.has("contacts:write"),
    )
    return _answer(session, notice, 202)


def _schedule_public(session: SessionDep, schedule: NoticeSchedule) -> SchedulePublic:
    return SchedulePublic(
        id=schedule.id or 0,
        rule=schedule.rule,
        first_at=schedule.first_at,
        ends_on=schedule.ends_on,
        next_at=schedule.next_at,
        occurrences=schedule.occurrences,
        notice_ids=schedules.schedule_notices(session, schedule.id or 0),
        cancelled_at=schedule.cancelled_at,
    )


@router.post("/schedules", status_code=201, response_model=SchedulePublic, summary="Create a recurring notice")
async def schedule_create(
    request: Request, body: ScheduleCreate, principal: Sender, session: SessionDep, settings: SettingsDep
) -> SchedulePublic:
    """Daily, weekly or monthly from the notice's send_at (Beijing time) until `ends_on`: a notice each time."""
    moment = utcnow()
    actor = actor_for(principal, request)
    schedule = schedules.create_schedule(
        session, principal.agency, body.notice, body.rule, body.ends_on, actor, settings, moment
    )
    session.commit()
    # Occurrences due within the lead time are created now rather than at the next sweep.
    for notice in await run_in_threadpool(schedules.governance_tick, request.app.state.engine, settings, moment):
        await enqueue_fanout(request.app.state.queue, notice, moment)
    session.refresh(schedule)
    return _schedule_public(session, schedule)


@router.get("/schedules", response_model=list[SchedulePublic], summary="The agency's recurring notices")
def schedule_list(principal: Reader, session: SessionDep) -> list[SchedulePublic]:
    """Every recurring notice of the agency, newest first."""
    rows = session.exec(
        select(NoticeSchedule)
        .where(NoticeSchedule.agency_id == principal.agency.id)
        .order_by(col(NoticeSchedule.id).desc())
    ).all()
    return [_schedule_public(session, s) for s in rows]


@router.get("/schedules/{schedule_id}", response_model=SchedulePublic, summary="A recurring notice")
def schedule_detail(schedule_id: RowId, principal: Reader, session: SessionDep) -> SchedulePublic:
    """One recurring notice and the notices it has created."""
    return _schedule_public(session, schedules.get_schedule(session, principal.agency, schedule_id))


@router.delete("/schedules/{schedule_id}", response_model=SchedulePublic, summary="Stop a recurring notice")
def schedule_cancel(request: Request, schedule_id: RowId, principal: Sender, session: SessionDep) -> SchedulePublic:
    """No more occurrences; those created and not started are cancelled."""
    actor = actor_for(principal, request)
    schedule = schedules.cancel_schedule(session, principal.agency, schedule_id, actor, utcnow())
    return _schedule_public(session, schedule)
