"""Notices API: accept (202, idempotent), read with progress, list, cancel, deliveries, agency callback URL."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from govconnect.api.deps import Principal, SessionDep, SettingsDep, actor_for, audit_call, require_scope
from govconnect.api.openapi import media_responses
from govconnect.api.paging import Page, paging
from govconnect.clock import utcnow
from govconnect.errors import ApiError
from govconnect.escaping import spreadsheet_row
from govconnect.notices import service
from govconnect.notices.agency_callbacks import callback_page, check_callback_url, signing_secret
from govconnect.notices.intake import accept_and_enqueue
from govconnect.notices.pipeline_models import DELIVERY_STATUSES
from govconnect.notices.replies import attendance_tally, iter_replies, replies_page
from govconnect.notices.reply_models import ATTENDANCE
from govconnect.notices.schemas import (
    Attendance,
    CallbackInfo,
    CallbackRegistration,
    DeliveryPage,
    DeliveryPublic,
    NoticeCreate,
    NoticePage,
    NoticePublic,
    RecipientVisibility,
    ReplyPage,
    ReplyPublic,
)

log = logging.getLogger("govconnect.notices")
router = APIRouter(prefix="/api/v1", tags=["notices"])
Sender = Annotated[Principal, Depends(require_scope("notices:send"))]
Reader = Annotated[Principal, Depends(require_scope("notices:read"))]
Admin = Annotated[Principal, Depends(require_scope("admin"))]


@router.post("/notices", status_code=202, response_model=NoticePublic, summary="Broadcast a notice")
async def create_notice(
    request: Request,
    body: NoticeCreate,
    principal: Sender,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Accept a notice (202); the same Idempotency-Key and body return the same notice."""
    moment = utcnow()
    notice, created = await accept_and_enqueue(
        request.app.state.queue,
        session,
        principal.agency,
        body,
        idempotency_key,
        settings,
        moment,
        actor_for(principal, request),
        sees_staff_contacts=principal.has("contacts:write"),
    )
    payload = await run_in_threadpool(service.notice_public, session, notice, not created)
    if created:
        payload.audience_report = service.csv_report(notice)
    return JSONResponse(
        payload.model_dump(mode="json"), status_code=202, headers={"Location": f"/api/v1/notices/{notice.id}"}
    )


@router.get("/notices", response_model=NoticePage, summary="This agency's notices")
def notices_list(
    principal: Reader,
    session: SessionDep,
    page: Annotated[Page, Depends(paging(default=50, maximum=200, legacy=True))],
    status: str | None = None,
    category: str | None = None,
    urgency: Literal["normal", "urgent"] | None = None,
    channel: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    review: Literal["pending", "overdue", "done"] | None = None,
) -> NoticePage:
    """List notices, newest first, with filters; `review` finds urgent notices sent before sign-off."""
    filters = {
        "status": status,
        "category": category,
        "urgency": urgency,
        "channel": channel,
        "created_after": created_after,
        "created_before": created_before,
        "review": review,
    }
    rows, total = service.list_notices(session, principal.agency, filters, page.limit, page.offset)
    items = [service.notice_public(session, n, with_progress=False) for n in rows]
    return NoticePage(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/notices/{notice_id}", response_model=NoticePublic, summary="A notice with per-channel progress")
def notice_detail(notice_id: str, principal: Reader, session: SessionDep) -> NoticePublic:
    """One notice and its progress per channel."""
    return service.notice_public(session, service.get_notice(session, principal.agency, notice_id))


@router.post("/notices/{notice_id}/cancel", response_model=NoticePublic, summary="Stop what has not been sent")
def notice_cancel(request: Request, notice_id: str, principal: Sender, session: SessionDep) -> NoticePublic:
    """Cancel a notice: queued deliveries are cancelled, sends in flight finish."""
    notice = service.cancel_notice(session, principal.agency, notice_id, utcnow(), actor_for(principal, request))
    return service.notice_public(session, notice)


@router.get(
    "/notices/{notice_id}/deliveries",
    response_model=DeliveryPage,
    responses=media_responses("csv"),
    summary="Deliveries (JSON or CSV)",
)
def notice_deliveries(
    request: Request,
    notice_id: str,
    principal: Reader,
    session: SessionDep,
    page: Annotated[Page, Depends(paging(default=100, maximum=1000, legacy=True))],
    status: str | None = None,
    channel: str | None = None,
    format: Literal["json", "csv"] = "json",
) -> DeliveryPage | StreamingResponse:
    """Deliveries of a notice; each recipient is shown only to keys that may see that person.

    Subscribers (and uploaded CSV numbers) need `subscribers:read`; staff contacts need
    `contacts:write`, as in the directory. Everyone else sees them masked.
    """
    if status is not None and status not in DELIVERY_STATUSES:
        raise ApiError(422, "validation_error", details={"status": status, "allowed": list(DELIVERY_STATUSES)})
    notice = service.get_notice(session, principal.agency, notice_id)
    reveal = RecipientVisibility(staff=principal.has("contacts:write"), others=principal.has("subscribers:read"))
    if format == "csv":
        every = service.iter_deliveries(request.app.state.engine, notice.id, status, channel)
        return StreamingResponse(
            _csv_lines(_delivery_public(r, reveal) for r in every),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="deliveries-{notice_id}.csv"'},
        )
    rows, total = service.list_deliveries(session, notice, status, channel, page.limit, page.offset)
    items = [_delivery_public(r, reveal) for r in rows]
    return DeliveryPage(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get(
    "/notices/{notice_id}/replies", response_model=ReplyPage, summary="SMS replies and 回执 tally (JSON or CSV)"
)
def notice_replies(
    request: Request,
    notice_id: str,
    principal: Reader,
    session: SessionDep,
    page: Annotated[Page, Depends(paging(default=100, maximum=1000))],
    format: Literal["json", "csv"] = "json",
) -> ReplyPage | StreamingResponse:
    """Replies people sent to this notice by SMS, oldest first; senders masked as in deliveries.

    For a meeting notice (`replies: "attendance"`) the answer adds the tally: will attend (1),
    will not (2), other replies, and who has not answered yet.
    """
    notice = service.get_notice(session, principal.agency, notice_id)
    reveal = RecipientVisibility(staff=principal.has("contacts:write"), others=principal.has("subscribers:read"))
    if format == "csv":
        every = iter_replies(request.app.state.engine, notice.id)
        return StreamingResponse(
            _csv_lines((_reply_public(r, reveal) for r in every), ReplyPublic),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="replies-{notice_id}.csv"'},
        )
    conn = session.connection()
    rows, total = replies_page(conn, notice.id, page.limit, page.offset)
    attendance = None
    if notice.replies == ATTENDANCE:
        counts, unanswered = attendance_tally(conn, notice.id)
        people = [{"delivery_id": r.id, "recipient": reveal.shown(r.recipient, r.params)} for r in unanswered]
        attendance = Attendance(**counts, not_answered=people)
    return ReplyPage(
        items=[_reply_public(r, reveal) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
        attendance=attendance,
    )


def _reply_public(r: Any, reveal: RecipientVisibility) -> ReplyPublic:
    return ReplyPublic(
        id=r.id,
        delivery_id=r.delivery_id,
        sender=reveal.shown(r.sender, r.params),
        text=r.text,
        provider=r.provider,
        answer=r.answer or None,
        received_at=r.received_at,
    )


def _delivery_public(r: Any, reveal: RecipientVisibility) -> DeliveryPublic:
    return DeliveryPublic(
        id=r.id,
        channel=r.channel,
        provider=r.provider,
        recipient=reveal.shown(r.recipient, r.params),
        status=r.status,
        attempts=r.attempts,
        parts=r.parts,
        error_code=r.error_code,
        sent_at=r.sent_at,
        final_at=r.final_at,
        uncertain=bool(r.uncertain),
        read_at=r.read_at,
    )


def _csv_lines(items: Iterable[BaseModel], model: type[BaseModel] = DeliveryPublic) -> Iterator[str]:
    fields = list(model.model_fields)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(fields)
    yield "\ufeff" + buffer.getvalue()  # BOM so spreadsheet programs read UTF-8 Chinese correctly
    for item in items:
        buffer.seek(0)
        buffer.truncate()
        data = item.model_dump(mode="json")
        writer.writerow(spreadsheet_row("" if data[f] is None else data[f] for f in fields))
        yield buffer.getvalue()


@router.get("/agencies/me/callback", response_model=CallbackInfo, summary="The delivery-status callback")
def callback_get(principal: Admin, settings: SettingsDep) -> CallbackInfo:
    """The registered callback URL and its signing secret."""
    agency = principal.agency
    secret = signing_secret(settings, agency.id or 0) if agency.callback_url else None
    return CallbackInfo(url=agency.callback_url, signing_secret=secret)


@router.put("/agencies/me/callback", response_model=CallbackInfo, summary="Register the delivery-status callback")
def callback_put(
    request: Request, body: CallbackRegistration, principal: Admin, session: SessionDep, settings: SettingsDep
) -> CallbackInfo:
    """Register (or with null, remove) an HTTPS URL that receives signed delivery-status POSTs (audited)."""
    agency = principal.agency
    if body.url is not None:
        check_callback_url(body.url, settings)  # CallbackUrlError is an Invalid: 422 callback_url_refused
    changes = {"callback_url": {"from": agency.callback_url, "to": body.url}}
    agency.callback_url = body.url
    session.add(agency)
    audit_call(session, principal, request, "settings_change", f"agency:{agency.id}", changes)
    session.commit()
    secret = signing_secret(settings, agency.id or 0) if agency.callback_url else None
    return CallbackInfo(url=agency.callback_url, signing_secret=secret)


class OwedCallback(BaseModel):
    """One batch of status events owed to the agency's callback URL, and how sending it went."""

    id: int
    status: Literal["pending", "delivered", "rejected", "failed"]
    attempts: int
    last_result: str
    next_attempt_at: datetime | None
    created_at: datetime
    done_at: datetime | None
    events: list[dict[str, Any]]


class OwedCallbackPage(BaseModel):
    """A page of the agency's callbacks, newest first."""

    items: list[OwedCallback]
    total: int
    limit: int
    offset: int


@router.get(
    "/agencies/me/callbacks", response_model=OwedCallbackPage, summary="Callbacks sent, pending and failed (admin)"
)
def callbacks_list(
    principal: Admin,
    session: SessionDep,
    page: Annotated[Page, Depends(paging(default=50, maximum=200))],
    status: Literal["pending", "delivered", "rejected", "failed"] | None = None,
) -> OwedCallbackPage:
    """What the gateway owes or owed the agency's callback URL; `failed` ones gave up after 24 hours of retries."""
    rows, total = callback_page(session.connection(), principal.agency.id or 0, status, page.limit, page.offset)
    return OwedCallbackPage(
        items=[OwedCallback.model_validate(row, from_attributes=True) for row in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
