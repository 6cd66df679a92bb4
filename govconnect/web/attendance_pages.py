"""A meeting notice's 回执 page: the recipient's signed link from WeCom/DingTalk (or the site), 参加 / 不参加."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from govconnect.api.deps import SessionDep, SettingsDep
from govconnect.clock import utcnow
from govconnect.notices.replies import BUTTON_TEXT, attendance_invite, record_attendance
from govconnect.text_rules import Text
from govconnect.web.rendering import error_page, public_page, render
from govconnect.web.session import verify_csrf

router = APIRouter(prefix="/m", include_in_schema=False, dependencies=[Depends(verify_csrf)])
INVALID = ("链接无效或通知已撤回", "This link is not valid, or the notice was withdrawn.")


@router.get("/attend/{invite}", response_class=HTMLResponse)
@public_page
def attendance_page(request: Request, session: SessionDep, settings: SettingsDep, invite: str) -> Response:
    """The notice and two buttons (GET changes nothing: link previewers follow GETs)."""
    found = attendance_invite(session.connection(), settings.secret_key.get_secret_value(), invite)
    if found is None:
        return error_page(request, 404, *INVALID)
    saved = request.query_params.get("saved") in BUTTON_TEXT
    return render(
        request,
        "attend.html",
        {"invite": found, "token": invite, "answer_text": BUTTON_TEXT.get(found.answer, ""), "saved": saved},
    )


@router.post("/attend/{invite}")
@public_page
def attendance_submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    invite: str,
    answer: Annotated[Text, Form(max_length=16)] = "",
) -> Response:
    """Record 参加 / 不参加 (the latest answer counts, with the SMS replies 1 / 2)."""
    found = attendance_invite(session.connection(), settings.secret_key.get_secret_value(), invite)
    if found is None:
        return error_page(request, 404, *INVALID)
    if answer not in BUTTON_TEXT:
        return error_page(request, 400, "请选择参加或不参加", "Choose attend or decline.")
    record_attendance(session, found, answer, utcnow())
    session.commit()
    return RedirectResponse(f"/m/attend/{invite}?saved={answer}", status_code=303)
