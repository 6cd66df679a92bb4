"""Console agency settings (admin): the SMS sender, the sign-off policy, the callback URL and what it is owed.

Every change goes through the domain function the API uses and is audited (`settings_change`, `policy_change`).
Quiet hours (22:00–07:00 for SMS and voice) and the daily limit are the platform's, shown but not changed here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from govconnect.agencies.models import StaffUser
from govconnect.api.deps import SessionDep, SettingsDep
from govconnect.audit.record import record_audit
from govconnect.console.pages import actor, render, user_agency
from govconnect.errors import DomainError
from govconnect.governance.models import APPROVAL_MODES
from govconnect.governance.policy import get_policy, set_policy
from govconnect.governance.schemas import PolicyUpdate
from govconnect.message_templates import senders
from govconnect.message_templates.schemas import SenderSettings
from govconnect.notices.agency_callbacks import callback_page, check_callback_url
from govconnect.notices.policy import QUIET_CHANNELS, QUIET_END, QUIET_START
from govconnect.text_rules import Text
from govconnect.web.session import require_role, verify_csrf

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(verify_csrf)])
AdminUser = Annotated[StaffUser, Depends(require_role())]  # admin only
CALLBACK_PAGE = 20
CALLBACK_STATUSES = {"pending": "待发送", "delivered": "已送达", "rejected": "被拒收", "failed": "已放弃"}
MODE_NAMES = {"none": "不需审核", "public": "公开渠道需审核", "large": "大范围发送需审核", "all": "全部需审核"}
DONE = {
    "sender": "短信签名与模板代码已保存",
    "policy": "审核策略已保存",
    "callback": "回调地址已保存",
}


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"])
    return f"输入有误（{field}）/ Invalid input: {error['msg']}"


def _settings_page(
    request: Request,
    session: Session,
    user: StaffUser,
    callback_status: str = "",
    callback_page_no: int = 1,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    agency = user_agency(session, user)
    status = callback_status if callback_status in CALLBACK_STATUSES else ""
    rows, total = callback_page(
        session.connection(), agency.id or 0, status or None, CALLBACK_PAGE, (callback_page_no - 1) * CALLBACK_PAGE
    )
    context: dict[str, Any] = {
        "agency": agency,
        "sender": senders.sender_of(session, agency.id or 0),
        "policy": get_policy(session, agency.id or 0),
        "modes": APPROVAL_MODES,
        "mode_names": MODE_NAMES,
        "quiet": {"start": QUIET_START, "end": QUIET_END, "channels": QUIET_CHANNELS},
        "callbacks": rows,
        "callback_total": total,
        "callback_status": status,
        "callback_statuses": CALLBACK_STATUSES,
        "callback_page": callback_page_no,
        "callback_pages": max(1, -(-total // CALLBACK_PAGE)),
        "message": message,
        "message_kind": "error" if status_code >= 400 else "ok",
    }
    return render(request, "settings.html", user, "settings", context, status_code=status_code)


@router.get("/settings", response_class=HTMLResponse)
def settings_room(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    callback_status: Annotated[str, Query(max_length=20)] = "",
    callback_page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The agency's settings and the callbacks it is owed (20 a page, filtered by status)."""
    return _settings_page(request, session, user, callback_status, callback_page, DONE.get(done))


def _saved(what: str) -> RedirectResponse:
    return RedirectResponse(f"/console/settings?done={what}", status_code=303)


@router.post("/settings/sender", response_class=HTMLResponse)
def settings_sender(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    sms_sign_name: Annotated[Text, Form(max_length=60)] = "",
    sms_template_code: Annotated[Text, Form(max_length=60)] = "",
    urgent_ignores_suppression: Annotated[Text, Form(max_length=5)] = "",
) -> Response:
    """Set the SMS signature (【…】), the free-text template code and the urgent-warning policy (audited)."""
    try:
        body = SenderSettings(
            sms_sign_name=sms_sign_name.strip(),
            sms_template_code=sms_template_code.strip(),
            urgent_ignores_suppression=urgent_ignores_suppression == "1",
        )
    except ValidationError as exc:
        return _settings_page(request, session, user, message=_first_error(exc), status_code=422)
    agency_id = user.agency_id
    senders.save_sender(session, agency_id, body.sms_sign_name, body.sms_template_code, body.urgent_ignores_suppression)
    record_audit(
        session, actor(request, user), "settings_change", "agency", agency_id, {"sender": body.model_dump()}, agency_id
    )
    session.commit()
    return _saved("sender")


@router.post("/settings/policy", response_class=HTMLResponse)
def settings_policy(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    require_approval: Annotated[Text, Form(max_length=16)] = "none",
    large_audience: Annotated[Text, Form(max_length=12)] = "",
    approvers: Annotated[Text, Form(max_length=3)] = "",
    review_hours: Annotated[Text, Form(max_length=4)] = "",
    urgent_at_once: Annotated[Text, Form(max_length=5)] = "",
) -> Response:
    """Change the sign-off policy through `set_policy` (validated and audited as policy_change)."""
    try:
        body = PolicyUpdate.model_validate(
            {
                "require_approval": require_approval,
                "large_audience": large_audience or None,
                "approvers": approvers or None,
                "review_hours": review_hours or None,
                "urgent_at_once": urgent_at_once == "1",
            }
        )
        set_policy(session, user.agency_id, actor(request, user), **body.model_dump(exclude_none=True))
    except ValidationError as exc:
        session.rollback()
        return _settings_page(request, session, user, message=_first_error(exc), status_code=422)
    except DomainError as exc:
        session.rollback()
        return _settings_page(request, session, user, message=exc.message, status_code=exc.status)
    session.commit()
    return _saved("policy")


@router.post("/settings/callback", response_class=HTMLResponse)
def settings_callback(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: AdminUser,
    callback_url: Annotated[Text, Form(max_length=500)] = "",
) -> Response:
    """Register (or, blank, remove) the HTTPS URL that receives signed status events (checked and audited)."""
    agency = user_agency(session, user)
    url = callback_url.strip() or None
    try:
        if url is not None:
            check_callback_url(url, settings)
    except DomainError as exc:
        return _settings_page(request, session, user, message=exc.message, status_code=exc.status)
    before = agency.callback_url
    agency.callback_url = url
    session.add(agency)
    record_audit(
        session,
        actor(request, user),
        "settings_change",
        "agency",
        agency.id or 0,
        {"callback_url": {"from": before, "to": url}},
        agency.id,
    )
    session.commit()
    return _saved("callback")
