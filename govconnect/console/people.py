"""Console rooms about people: saved audience lists (upload with row report, delete), the city's subscribers
(masked, admin) and the suppression list (admin: look up, add, remove what the agency added; audited).

Audience lists are the agency's own (another agency's list is 404). Subscribers and the suppression list are
the city's, as in the API: every number is shown masked, and a number is looked up by its keyed hash.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from govconnect.agencies.models import StaffUser
from govconnect.api.deps import SessionDep, SettingsDep
from govconnect.api.params import RowId
from govconnect.audiences import lists
from govconnect.audiences.reader import FileRefused
from govconnect.audiences.rows import MOBILE
from govconnect.audit.record import record_audit
from govconnect.citizens.api import masked_csv
from govconnect.citizens.models import Subscriber
from govconnect.citizens.optout import normalise_phone
from govconnect.citizens.subscriptions import masked_rows
from govconnect.console.compose import REASON_NAMES
from govconnect.console.pages import ConsoleUser, Drafter, actor, render
from govconnect.suppression import service as suppression
from govconnect.text_rules import Text
from govconnect.web.session import require_role, verify_csrf

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(verify_csrf)])
AdminUser = Annotated[StaffUser, Depends(require_role())]  # admin only
LIST_PAGE = 50
REFUSED_PAGE = 200
SUBSCRIBER_PAGE = 50
SUPPRESSION_PAGE = 50
SOURCE_NAMES = {"operator": "机构添加", "purge": "数据清理保留", "citizen": "市民退订"}
DONE = {
    "deleted": "名单已删除",
    "added": "号码已加入屏蔽名单",
    "exists": "号码已在屏蔽名单中",
    "removed": "号码已移出屏蔽名单",
}


def _lists_page(
    request: Request,
    session: Session,
    user: StaffUser,
    page: int = 1,
    upload: dict[str, Any] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows, total = lists.agency_lists(session, user.agency_id, LIST_PAGE, (page - 1) * LIST_PAGE)
    context = {
        "rows": rows,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // LIST_PAGE)),
        "upload": upload,
        "reason_names": REASON_NAMES,
        "message": message,
        "message_kind": "error" if status_code >= 400 else "ok",
    }
    return render(request, "audiences.html", user, "audiences", context, status_code=status_code)


@router.get("/audiences", response_class=HTMLResponse)
def audiences_room(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The agency's saved audience lists, newest first, and the upload form."""
    return _lists_page(request, session, user, page, message=DONE.get(done))


@router.post("/audiences", response_class=HTMLResponse)
async def audiences_upload(
    request: Request,
    session: SessionDep,
    user: Drafter,
    audience_file: Annotated[UploadFile | None, File()] = None,
    name: Annotated[Text, Form(max_length=200)] = "",
) -> Response:
    """Stream a CSV/XLSX file into a new saved list; the page reports accepted, merged and refused rows."""
    if audience_file is None or not audience_file.filename:
        return _lists_page(request, session, user, message="请选择 CSV 或 XLSX 文件", status_code=422)
    filename = audience_file.filename
    try:
        saved, report = await run_in_threadpool(
            lists.import_audience_file,
            request.app.state.engine,
            user.agency_id,
            name.strip() or filename,
            audience_file.file,
            filename,
        )
    except FileRefused as exc:
        return _lists_page(request, session, user, message=exc.message, status_code=422)
    finally:
        await audience_file.close()
    upload = {"list": saved, "refused": report.refused[:50], "refused_total": report.refused_total}
    message = f"已导入“{saved.name}”：接受 {saved.accepted} 行，拒绝 {saved.refused} 行，合并重复 {saved.duplicates} 行"
    return _lists_page(request, session, user, upload=upload, message=message)


@router.get("/audiences/{list_id}", response_class=HTMLResponse)
def audience_detail(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    list_id: RowId,
    after_line: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Response:
    """One list: its counts and its refused rows (line and reason, in file order, 200 at a time)."""
    saved = lists.get_list(session, user.agency_id, list_id)
    refused = lists.refused_rows(session.connection(), list_id, after_line, REFUSED_PAGE)
    context = {
        "l": saved,
        "refused": refused,
        "reason_names": REASON_NAMES,
        "next_after": refused[-1][0] if len(refused) == REFUSED_PAGE else None,
    }
    return render(request, "audience.html", user, "audiences", context)


@router.post("/audiences/{list_id}/delete")
def audience_delete(request: Request, session: SessionDep, user: Drafter, list_id: RowId) -> Response:
    """Remove the list and its rows (notices already accepted keep what they wrote)."""
    lists.get_list(session, user.agency_id, list_id)
    session.rollback()
    lists.delete_list(request.app.state.engine, list_id)
    return RedirectResponse("/console/audiences?done=deleted", status_code=303)


@router.get("/subscribers", response_class=HTMLResponse)
def subscribers_room(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """The city's subscribers, masked (number and openid), oldest first, 50 a page."""
    total = session.exec(select(func.count()).select_from(Subscriber)).one()
    active = session.exec(select(func.count()).select_from(Subscriber).where(col(Subscriber.status) == "active")).one()
    rows = list(masked_rows(session, (page - 1) * SUBSCRIBER_PAGE, SUBSCRIBER_PAGE))
    context = {
        "rows": rows,
        "total": total,
        "active": active,
        "page": page,
        "pages": max(1, -(-total // SUBSCRIBER_PAGE)),
    }
    return render(request, "subscribers.html", user, "subscribers", context)


@router.get("/subscribers.csv")
def subscribers_csv(session: SessionDep, user: AdminUser) -> Response:
    """Every subscriber as masked CSV (the API's export)."""
    return Response(
        masked_csv(session),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="subscribers-masked.csv"'},
    )


def _mobile(phone: str) -> str | None:
    number = normalise_phone(phone)
    return number if MOBILE.match(number) else None


def _suppression_page(
    request: Request,
    session: Session,
    settings: Any,
    user: StaffUser,
    phone: str = "",
    page: int = 1,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    key = None
    if phone.strip():
        number = _mobile(phone)
        if number is None:
            message, status_code, phone = "手机号无效 / Invalid mobile number", 422, ""
        else:
            key = suppression.phone_key(settings.secret_key.get_secret_value(), number)
    rows, total = suppression.list_entries(session, SUPPRESSION_PAGE, (page - 1) * SUPPRESSION_PAGE, key)
    context = {
        "rows": rows,
        "total": total,
        "phone": phone.strip(),
        "looked_up": key is not None,
        "page": page,
        "pages": max(1, -(-total // SUPPRESSION_PAGE)),
        "source_names": SOURCE_NAMES,
        "message": message,
        "message_kind": "error" if status_code >= 400 else "ok",
    }
    return render(request, "suppressions.html", user, "suppressions", context, status_code=status_code)


@router.get("/suppressions", response_class=HTMLResponse)
def suppressions_room(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: AdminUser,
    phone: Annotated[Text, Query(max_length=20)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The suppression list (masked), newest first; `phone` tells whether one number is on it."""
    return _suppression_page(request, session, settings, user, phone, page, DONE.get(done))


@router.post("/suppressions", response_class=HTMLResponse)
def suppressions_add(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: AdminUser,
    phone: Annotated[Text, Form(max_length=20)] = "",
    reason: Annotated[Text, Form(max_length=200)] = "",
) -> Response:
    """Stop normal notices to a number from every agency (audited as suppression_change)."""
    number = _mobile(phone)
    if number is None:
        return _suppression_page(
            request, session, settings, user, message="手机号无效 / Invalid mobile number", status_code=422
        )
    secret = settings.secret_key.get_secret_value()
    entry, created = suppression.suppress(session, secret, number, "operator", reason.strip(), user.agency_id)
    if created:
        record_audit(
            session,
            actor(request, user),
            "suppression_change",
            "suppression",
            entry.id or 0,
            {"op": "add", "phone": entry.phone_hint, "reason": reason.strip()},
            user.agency_id,
        )
    session.commit()
    return RedirectResponse(f"/console/suppressions?done={'added' if created else 'exists'}", status_code=303)


@router.post("/suppressions/{entry_id}/remove")
def suppressions_remove(request: Request, session: SessionDep, user: AdminUser, entry_id: RowId) -> Response:
    """Let normal notices reach the number again: only entries this agency added (others are 404); audited."""
    entry = suppression.removable_entry(session, entry_id, user.agency_id)
    suppression.remove(session, entry)
    record_audit(
        session,
        actor(request, user),
        "suppression_change",
        "suppression",
        entry_id,
        {"op": "remove", "phone": entry.phone_hint, "source": entry.source},
        user.agency_id,
    )
    session.commit()
    return RedirectResponse("/console/suppressions?done=removed", status_code=303)
