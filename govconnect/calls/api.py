"""Click-to-dial for operators: call a person a notice reached, by delivery id; the number is never shown."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from contacts.phones import normalise_mobile
from govconnect.api.deps import Principal, SessionDep, SettingsDep, actor_for, require_scope
from govconnect.calls import service
from govconnect.calls.models import DialCall
from govconnect.errors import Conflict, Invalid, NotFound
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import Delivery
from govconnect.text_rules import Text

router = APIRouter(prefix="/api/v1", tags=["calls"])
Caller = Annotated[Principal, Depends(require_scope("notices:send"))]
Reader = Annotated[Principal, Depends(require_scope("notices:read"))]
PHONE_CHANNELS = ("sms", "voice")


class CallCreate(BaseModel):
    """Whom to call (a delivery of one of the agency's notices) and the operator's own mobile, rung first."""

    model_config = ConfigDict(extra="forbid")

    delivery_id: Text = Field(min_length=1, max_length=32)
    caller_number: Text = Field(min_length=11, max_length=20, description="The operator's mobile, called first")


class CallPublic(BaseModel):
    """A call as its agency sees it: whom (by id), its state, no numbers."""

    id: str
    status: str
    target_type: str
    target_id: str
    leg: str
    duration: int
    error_code: str | None
    created_at: datetime
    ended_at: datetime | None


def call_public(call: DialCall) -> CallPublic:
    """The public view of a call."""
    return CallPublic.model_validate(call, from_attributes=True)


@router.post("/calls", status_code=202, response_model=CallPublic, summary="Call a notice's recipient (双呼)")
async def create_call(
    request: Request, body: CallCreate, principal: Caller, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    """Ring `caller_number`, then bridge to the person of the delivery; both see the government number."""
    caller = normalise_mobile(body.caller_number)
    if not caller:
        raise Invalid("validation_error", "主叫号码不是有效的手机号 / caller_number is not a mainland mobile")
    delivery = session.get(Delivery, body.delivery_id)
    notice = session.get(Notice, delivery.notice_id) if delivery is not None else None
    if delivery is None or notice is None or notice.agency_id != principal.agency.id:
        raise NotFound("not_found", "投递记录不存在 / No such delivery")
    if delivery.channel not in PHONE_CHANNELS or not delivery.recipient.isdigit():
        raise Conflict("not_a_phone", "该投递的接收方不是电话号码 / This delivery did not go to a phone number")
    call_id = await service.place_call(
        request.app.state,
        settings,
        actor=actor_for(principal, request),
        agency_id=notice.agency_id,
        staff_user_id=None,
        caller=caller,
        called=delivery.recipient,
        target=("delivery", delivery.id),
    )
    session.expire_all()
    call = service.get_call(session, call_id, agency_id=notice.agency_id)
    return JSONResponse(
        call_public(call).model_dump(mode="json"), status_code=202, headers={"Location": f"/api/v1/calls/{call_id}"}
    )


@router.get("/calls/{call_id}", response_model=CallPublic, summary="A call's state")
def call_detail(call_id: str, principal: Reader, session: SessionDep) -> CallPublic:
    """How one of the agency's calls went (calling, answered, busy, no_answer, cancelled, failed, rejected)."""
    return call_public(service.get_call(session, call_id, agency_id=principal.agency.id or 0))
