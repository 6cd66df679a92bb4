"""Staff pages: "通过政务号码拨打" on a contact card, and the call's result page."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from contacts.models import Contact
from contacts.phones import normalise_mobile
from govconnect.api.deps import SessionDep, SettingsDep
from govconnect.api.params import RowId
from govconnect.audit.record import Actor
from govconnect.calls import service
from govconnect.errors import Conflict, NotFound
from govconnect.web.rendering import render
from govconnect.web.session import StaffDep, client_ip, verify_csrf

router = APIRouter(prefix="/m/staff", include_in_schema=False, dependencies=[Depends(verify_csrf)])
STATE_LABELS = {
    "calling": "正在呼叫：请接听您的手机，接通后将为您转接对方",
    "answered": "通话已结束",
    "busy": "对方忙",
    "no_answer": "无人接听",
    "cancelled": "已取消",
    "failed": "呼叫失败",
    "rejected": "呼叫未能发起",
}


def contact_number(contact: Contact) -> str:
    """The number a call to this contact reaches: the mobile, else the office phone (digits only)."""
    mobile = normalise_mobile(contact.mobile or "")
    if mobile:
        return mobile
    return "".join(ch for ch in contact.office_phone or "" if ch.isdigit())


@router.post("/contacts/{contact_id}/dial")
async def dial_contact(
    request: Request, session: SessionDep, settings: SettingsDep, staff: StaffDep, contact_id: RowId
) -> Response:
    """Ring the signed-in staff member's phone, then bridge to the contact (both see the government number)."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound("not_found", "联系人不存在 / No such contact")
    caller = normalise_mobile(staff.phone or "")
    if not caller:
        raise Conflict("no_staff_phone", "您的账号未登记手机号码，无法发起双呼 / Your account has no mobile number")
    called = contact_number(contact)
    if len(called) < 7:
        raise Conflict("no_number", "该联系人没有可拨打的号码 / This contact has no number to call")
    call_id = await service.place_call(
        request.app.state,
        settings,
        actor=Actor.staff(staff, client_ip(request)),
        agency_id=staff.agency_id,
        staff_user_id=staff.id,
        caller=caller,
        called=called,
        target=("contact", str(contact_id)),
    )
    return RedirectResponse(f"/m/staff/calls/{call_id}", status_code=303)


@router.get("/calls/{call_id}", response_class=HTMLResponse)
def call_page(request: Request, session: SessionDep, staff: StaffDep, call_id: str) -> Response:
    """How the call went; refreshes itself while the call is ringing."""
    call = service.get_call(session, call_id, agency_id=staff.agency_id, staff_user_id=staff.id)
    contact = session.get(Contact, int(call.target_id)) if call.target_type == "contact" else None
    return render(
        request,
        "call.html",
        {"call": call, "label": STATE_LABELS.get(call.status, call.status), "contact": contact},
        session=session,
    )


@router.post("/calls/{call_id}/cancel")
async def call_cancel(
    request: Request, session: SessionDep, settings: SettingsDep, staff: StaffDep, call_id: str
) -> Response:
    """Hang up a call that is still ringing."""
    call = service.get_call(session, call_id, agency_id=staff.agency_id, staff_user_id=staff.id)
    await service.cancel(request.app.state, settings, call)
    return RedirectResponse(f"/m/staff/calls/{call.id}", status_code=303)
