"""Console notices: the searchable list, a notice's page with live progress, deliveries and its actions."""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from govconnect.agencies.models import StaffUser
from govconnect.api.deps import SessionDep, SettingsDep
from govconnect.api.routes.notices import _csv_lines, _delivery_public
from govconnect.console import queries
from govconnect.console.pages import (
    APPROVE_ROLES,
    CHANNEL_NAMES,
    DELIVERY_STATUS_NAMES,
    DRAFT_ROLES,
    STATUS_NAMES,
    ConsoleUser,
    Drafter,
    actor,
    drafter_names,
    may,
    render,
    staff_label,
    user_agency,
)
from govconnect.errors import DomainError, NotFound
from govconnect.governance import retraction, signoff
from govconnect.governance.schemas import CorrectionCreate
from govconnect.notices import service
from govconnect.notices.intake import accept_and_enqueue, dispatch, enqueue_fanout
from govconnect.notices.models import EDITABLE_STATUSES, NOTICE_STATUSES, NOTICE_TRANSITIONS, Notice
from govconnect.notices.pipeline_models import DELIVERY_STATUSES, FINAL_STATUSES
from govconnect.notices.schemas import RecipientVisibility
from govconnect.text_rules import MultilineText, Text
from govconnect.web.session import verify_csrf

log = logging.getLogger("govconnect.console")
router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(verify_csrf)])
PAGE_SIZE = 20
DELIVERY_PAGE = 50
# Done deliveries: handed to the provider (a receipt may follow) or final (held back at fan-out included).
FINAL = ("sent", *FINAL_STATUSES)
# Notices a correction may follow (they went out, or are on their way): retraction.check_correctable's list.
CORRECTABLE = ("sending", "completed", "failed", "retracted", "accepted", "approved")
# A staff session sees staff contacts as the directory shows them; citizens' numbers stay masked.
CONSOLE_VISIBILITY = RecipientVisibility(staff=True, others=False)


def _notice(session: Session, user: StaffUser, notice_id: str) -> Notice:
    """The user's agency's notice, or 404 (another agency's notice is not found either)."""
    notice = session.get(Notice, notice_id) if len(notice_id) <= 32 else None
    if notice is None or notice.agency_id != user.agency_id:
        raise NotFound()
    return notice


@router.get("/notices", response_class=HTMLResponse)
def notice_list(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    q: Annotated[Text, Query(max_length=100)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    channel: Annotated[str, Query(max_length=10)] = "",
    since: date | None = None,
    until: date | None = None,
    drafter: Annotated[str, Query(max_length=80)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """Notices of the agency, searchable by title, status, channel, date and drafter; 20 a page."""
    filters = queries.NoticeFilters(
        q=q.strip(),
        status=status if status in NOTICE_STATUSES else "",
        channel=channel,
        since=since,
        until=until,
        drafter=drafter,
    )
    rows, total = queries.search_notices(session, user.agency_id, filters, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    labels = queries.drafters(session, user.agency_id)
    names = drafter_names(session, set(labels) | {n.created_by for n in rows})
    pages = max(1, -(-total // PAGE_SIZE))
    query = {k: v for k, v in request.query_params.items() if k not in ("page", "done")}
    return render(
        request,
        "notices.html",
        user,
        "notices",
        {
            "rows": rows,
            "total": total,
            "page": page,
            "pages": pages,
            "filters": filters,
            "drafters": [(label, names.get(label, label)) for label in labels],
            "names": names,
            "query": query,
            "statuses": NOTICE_STATUSES,
            "message": DONE_MESSAGES.get(done),
        },
    )


# Statuses whose page follows the notice live (anything else changes only by someone's action).
LIVE_STATUSES = ("pending_approval", "approved", "scheduled", "accepted", "sending")


def allowed_actions(notice: Notice, user: StaffUser) -> list[str]:
    """The actions the page offers this user on this notice now (the services check again on POST)."""
    actions: list[str] = []
    if notice.status == "pending_approval" and may(user, APPROVE_ROLES):
        if staff_label(user) not in (notice.created_by, notice.status_changed_by):
            actions += ["approve", "reject"]
    if not may(user, DRAFT_ROLES):
        return actions
    if notice.status in EDITABLE_STATUSES and notice.status != "scheduled":
        actions.append("edit")
    if notice.status == "draft":
        actions.append("submit")
    for action, target in (("cancel", "cancelled"), ("retract", "retracted")):
        if target in NOTICE_TRANSITIONS[notice.status]:
            actions.append(action)
    if notice.status in CORRECTABLE:
        actions.append("correct")
    return actions


def _progress_view(session: Session, notice: Notice, user: StaffUser) -> dict[str, Any]:
    """Per-channel counts and the share done, as the page and its polling script show them."""
    progress, _as_of = service.PROGRESS.get(session, notice.id)
    channels: dict[str, Any] = {}
    total = finished = 0
    for channel, p in progress.items():
        data = p.model_dump() if hasattr(p, "model_dump") else dict(p)
        done = sum(int(data.get(s, 0)) for s in FINAL)
        data["done"] = done
        data["label"] = CHANNEL_NAMES.get(channel, channel)
        data["percent"] = int(100 * done / data["total"]) if data["total"] else 100
        channels[channel] = data
        total += int(data["total"])
        finished += done
    publishes = [c for c in notice.channels if c not in channels and c in ("site", "tv")]
    over = notice.status in ("completed", "failed", "cancelled", "retracted", "expired")
    percent = int(100 * finished / total) if total else (100 if over or notice.status == "sending" else 0)
    if notice.status == "completed":
        percent = 100
    return {
        "status": notice.status,
        "status_name": STATUS_NAMES.get(notice.status, notice.status),
        "channels": channels,
        "published": publishes,
        "percent": percent,
        "over": over,
        "live": notice.status in LIVE_STATUSES,
        "deliveries": total,
        # Changes whenever any delivery changes status: the deliveries table below is then out of date.
        "version": ";".join(
            f"{channel}:" + ",".join(f"{k}={v}" for k, v in sorted(data.items()) if isinstance(v, int))
            for channel, data in sorted(channels.items())
        ),
        "held": queries.held_reasons(session, notice, channels, queries.now()),
        "actions": allowed_actions(notice, user),
    }


def notice_page(
    request: Request,
    session: Session,
    user: StaffUser,
    notice: Notice,
    message: str | None = None,
    status_code: int = 200,
    d_status: str = "",
    d_channel: str = "",
    d_page: int = 1,
) -> HTMLResponse:
    """The notice's page (also re-rendered with a message when an action was refused)."""
    d_status = d_status if d_status in DELIVERY_STATUSES else ""
    d_channel = d_channel if d_channel in notice.channels else ""
    rows, d_total = service.list_deliveries(
        session, notice, d_status or None, d_channel or None, DELIVERY_PAGE, (d_page - 1) * DELIVERY_PAGE
    )
    deliveries = [_delivery_public(r, CONSOLE_VISIBILITY) for r in rows]
    names = drafter_names(session, {notice.created_by, notice.status_changed_by})
    return render(
        request,
        "notice.html",
        user,
        "notices",
        {
            "notice": notice,
            "view": _progress_view(session, notice, user),
            "deliveries": deliveries,
            "d_total": d_total,
            "d_status": d_status,
            "d_channel": d_channel,
            "d_page": d_page,
            "d_pages": max(1, -(-d_total // DELIVERY_PAGE)),
            "delivery_status_names": DELIVERY_STATUS_NAMES,
            "delivery_statuses": DELIVERY_STATUSES,
            "names": names,
            "report": service.csv_report(notice),
            "message": message,
            "message_kind": "error" if status_code >= 400 else "ok",
        },
        status_code=status_code,
    )


@router.get("/notices/{notice_id}", response_class=HTMLResponse)
def notice_detail(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    notice_id: str,
    status: Annotated[str, Query(max_length=20)] = "",
    channel: Annotated[str, Query(max_length=10)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """One notice: live progress per channel, why work is held, deliveries (filtered, paged), actions."""
    notice = _notice(session, user, notice_id)
    message = DONE_MESSAGES.get(done)
    return notice_page(request, session, user, notice, message, d_status=status, d_channel=channel, d_page=page)


@router.get("/notices/{notice_id}/progress.json")
def notice_progress(session: SessionDep, user: ConsoleUser, notice_id: str) -> JSONResponse:
    """What the notice page polls: status, per-channel progress, the share done, why work is held."""
    notice = _notice(session, user, notice_id)
    return JSONResponse(_progress_view(session, notice, user), headers={"Cache-Control": "no-store"})


@router.get("/notices/{notice_id}/deliveries.csv")
def notice_deliveries_csv(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    notice_id: str,
    status: Annotated[str, Query(max_length=20)] = "",
    channel: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    """The deliveries as CSV (filters as on the page); citizens' numbers masked, as in the API."""
    notice = _notice(session, user, notice_id)
    every = service.iter_deliveries(
        request.app.state.engine,
        notice.id,
        status if status in DELIVERY_STATUSES else None,
        channel if channel in notice.channels else None,
    )
    return StreamingResponse(
        _csv_lines(_delivery_public(r, CONSOLE_VISIBILITY) for r in every),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="deliveries-{notice.id}.csv"'},
    )


DONE_MESSAGES = {
    "cancelled": "已取消：未发出的消息不再发送",
    "retracted": "已撤回：通知已从网站、电视和微博撤下",
    "edited": "已保存修改，通知回到草稿，请重新提交审核",
    "submitted": "已提交",
    "approved": "已审核通过",
    "rejected": "已退回起草人",
    "corrected": "已创建更正通知",
    "repeating": "已创建重复发送：每次的通知会出现在此列表中",
}


def _after(notice: Notice, done: str) -> RedirectResponse:
    return RedirectResponse(f"/console/notices/{notice.id}?done={done}", status_code=303)


@router.post("/notices/{notice_id}/cancel")
def notice_cancel(request: Request, session: SessionDep, user: Drafter, notice_id: str) -> Response:
    """Stop what has not been sent."""
    notice = _notice(session, user, notice_id)
    try:
        service.cancel_notice(session, user_agency(session, user), notice.id, queries.now(), actor(request, user))
    except DomainError as exc:
        session.rollback()
        return notice_page(request, session, user, notice, exc.message, exc.status)
    return _after(notice, "cancelled")


@router.post("/notices/{notice_id}/retract")
async def notice_retract(
    request: Request,
    session: SessionDep,
    user: Drafter,
    notice_id: str,
    reason: Annotated[MultilineText, Form(max_length=500)] = "",
) -> Response:
    """Withdraw the notice everywhere (public surfaces, undelivered messages, its Weibo post)."""
    notice = _notice(session, user, notice_id)
    if not reason.strip():
        return notice_page(request, session, user, notice, "请填写撤回原因", 422)
    agency = user_agency(session, user)
    try:
        await run_in_threadpool(
            retraction.retract, session, agency, notice.id, actor(request, user), reason.strip(), queries.now()
        )
    except DomainError as exc:
        session.rollback()
        return notice_page(request, session, user, notice, exc.message, exc.status)
    try:
        await request.app.state.queue.enqueue("delete_weibo_posts", notice_id=notice.id)
    except Exception:  # noqa: BLE001 - the retraction is committed; the public surfaces already dropped it
        log.warning("notice %s: queuing the Weibo deletion failed", notice.id, exc_info=True)
    return _after(notice, "retracted")


@router.post("/notices/{notice_id}/edit")
async def notice_edit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Drafter,
    notice_id: str,
    title: Annotated[Text, Form(max_length=200)] = "",
    body: Annotated[MultilineText, Form(max_length=5000)] = "",
) -> Response:
    """Change the title and text of a notice that has not gone out (it returns to draft)."""
    notice = _notice(session, user, notice_id)
    changes = {"title": title.strip(), "body": body.strip()}
    if not changes["title"] or not changes["body"]:
        return notice_page(request, session, user, notice, "标题和正文不能为空", 422)
    agency = user_agency(session, user)
    try:
        edited = await run_in_threadpool(
            signoff.edit, session, agency, notice.id, changes, settings, actor(request, user), queries.now()
        )
    except (DomainError, ValidationError) as exc:
        session.rollback()
        text = exc.message if isinstance(exc, DomainError) else "输入有误"
        return notice_page(request, session, user, notice, text, getattr(exc, "status", 422))
    if edited.status == "pending_approval":
        await dispatch(request.app.state.queue, session, agency, edited, settings)
    else:
        await enqueue_fanout(request.app.state.queue, edited, queries.now())
    return _after(edited, "edited")


@router.post("/notices/{notice_id}/submit")
async def notice_submit(
    request: Request, session: SessionDep, settings: SettingsDep, user: Drafter, notice_id: str
) -> Response:
    """Submit a draft: for sign-off when the policy asks for it, else on its way."""
    notice = _notice(session, user, notice_id)
    agency = user_agency(session, user)
    try:
        submitted = await run_in_threadpool(
            signoff.submit, session, agency, notice.id, actor(request, user), queries.now()
        )
    except DomainError as exc:
        session.rollback()
        return notice_page(request, session, user, notice, exc.message, exc.status)
    await dispatch(request.app.state.queue, session, agency, submitted, settings)
    return _after(submitted, "submitted")


@router.post("/notices/{notice_id}/correct")
async def notice_correct(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Drafter,
    notice_id: str,
    title: Annotated[Text, Form(max_length=200)] = "",
    body: Annotated[MultilineText, Form(max_length=5000)] = "",
    resend: Annotated[Text, Form(max_length=5)] = "",
) -> Response:
    """Publish a correction (更正) linked to this notice; it goes through sign-off like any notice."""
    original = _notice(session, user, notice_id)
    agency = user_agency(session, user)
    try:
        retraction.check_correctable(session, agency, original.id)
        public = [c for c in original.channels if c in ("site", "tv", "weibo")] or ["site"]
        data: dict[str, Any] = {
            "title": title.strip(),
            "body": body.strip(),
            "category": original.category,
            "regions": list(original.regions),
            "channels": public,
        }
        if resend:
            data["audience"] = original.audience
            data["channels"] = list(dict.fromkeys([*public, *(c for c in original.channels if c in ("sms", "wechat"))]))
        request_data = CorrectionCreate.model_validate(data)
        correction, _created = await accept_and_enqueue(
            request.app.state.queue,
            session,
            agency,
            request_data,
            None,
            settings,
            queries.now(),
            actor(request, user),
            corrects=original,
            sees_staff_contacts=True,
        )
    except (DomainError, ValidationError) as exc:
        session.rollback()
        text = exc.message if isinstance(exc, DomainError) else "请填写更正的标题和正文"
        return notice_page(request, session, user, original, text, getattr(exc, "status", 422))
    return _after(correction, "corrected")
