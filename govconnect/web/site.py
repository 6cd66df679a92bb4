"""The mobile government site, public part: latest notices, detail, search, Weibo posts, staff sign-in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.agencies.service import authenticate_staff
from govconnect.api.deps import SessionDep, SettingsDep
from govconnect.audit.record import Actor, record_audit
from govconnect.citizens.subscriptions import active_categories, active_regions
from govconnect.governance.retraction import correction_of
from govconnect.notices.publication import public_view
from govconnect.notices.replies import attendance_invite
from govconnect.notices.reply_models import ATTENDANCE
from govconnect.settings import Settings
from govconnect.text_rules import Text
from govconnect.web.notice_search import NoticeIndex
from govconnect.web.queries import category_names, public_notices, retracted_public_notice, visible_notice
from govconnect.web.rendering import error_page, public_page, render
from govconnect.web.session import (
    client_ip,
    current_staff,
    login_failed,
    login_succeeded,
    login_wait,
    sign_in,
    sign_out,
    verify_csrf,
)
from govconnect.web.weibo_view import recent_posts

router = APIRouter(prefix="/m", include_in_schema=False, dependencies=[Depends(verify_csrf)])


@router.get("/", response_class=HTMLResponse)
@public_page
def home(
    request: Request,
    session: SessionDep,
    category: Annotated[str | None, Query(max_length=64)] = None,
    region: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Latest public notices, by category and region."""
    notices = public_notices(session, category=category or None, region=region or None, limit=30)
    return render(
        request,
        "index.html",
        {
            "notices": notices,
            "categories": category_names(session),
            "category_list": active_categories(session),
            "region_list": active_regions(session),
            "category": category or "",
            "region": region or "",
        },
        session=session,
        region=region or None,
    )


@router.get("/notices/{notice_id}", response_class=HTMLResponse)
@public_page
def notice_detail(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    notice_id: str,
    r: Annotated[str, Query(max_length=80)] = "",
) -> Response:
    """One public notice; a meeting notice opened with a recipient's signed `r` links to their 回执 page."""
    notice = visible_notice(session, notice_id)
    if notice is None:
        withdrawn = retracted_public_notice(session, notice_id)
        if withdrawn is not None:
            return error_page(
                request, 410, "该通知已撤回", f"撤回原因：{withdrawn.retracted_reason} / This notice was retracted."
            )
        return error_page(request, 404, "通知不存在或已撤回", "The notice does not exist or was withdrawn.")
    agency = session.get(Agency, notice.agency_id)
    return render(
        request,
        "notice.html",
        {
            "notice": public_view(notice),
            "categories": category_names(session),
            "agency_name": agency.name if agency else "",
            "correction": correction_of(session, notice),
            "meeting": notice.replies == ATTENDANCE,
            "attend_token": r if r and _invites_to(session, settings, r, notice.id) else "",
        },
        session=session,
    )


def _invites_to(session: Session, settings: Settings, token: str, notice_id: str) -> bool:
    invite = attendance_invite(session.connection(), settings.secret_key.get_secret_value(), token)
    return invite is not None and invite.notice_id == notice_id


@router.get("/search", response_class=HTMLResponse)
@public_page
def search_page(
    request: Request, session: SessionDep, settings: SettingsDep, q: Annotated[str, Query(max_length=100)] = ""
) -> Response:
    """Full-text notice search (jieba + whoosh)."""
    notices = NoticeIndex(settings.data_dir / "notice-index").search(session, q) if q.strip() else []
    return render(
        request, "search.html", {"q": q, "notices": notices, "categories": category_names(session)}, session=session
    )


@router.get("/weibo", response_class=HTMLResponse)
@public_page
def weibo_page(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """The official account's recent posts."""
    posts = recent_posts(session, settings.public_base_url)
    return render(request, "weibo.html", {"posts": posts}, session=session)


def _safe_next(value: str) -> str:
    # Only same-site paths under /m/ or the console: never an open redirect.
    inside = value.startswith(("/m/", "/console/")) or value == "/console"
    return value if inside and not value.startswith("//") and "\\" not in value else "/m/staff/"


@router.get("/login", response_class=HTMLResponse)
@public_page
def login_page(request: Request, next: Annotated[str, Query(max_length=300)] = "/m/staff/") -> Response:  # noqa: A002
    """The staff sign-in form."""
    return render(request, "login.html", {"next_url": _safe_next(next)})


@router.post("/login", response_class=HTMLResponse)
@public_page
def login_submit(
    request: Request,
    session: SessionDep,
    username: Annotated[Text, Form(max_length=64)] = "",
    password: Annotated[Text, Form(max_length=256)] = "",
    next: Annotated[Text, Form(max_length=300)] = "/m/staff/",  # noqa: A002
) -> Response:
    """Check the login rate limit and the argon2 password (the router checked CSRF); then start a session."""
    context = {"next_url": _safe_next(next), "message_kind": "error"}
    wait = login_wait(request, username)
    if wait:
        return render(
            request,
            "login.html",
            {**context, "message": f"登录尝试过多，请 {wait} 秒后再试"},
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    user = authenticate_staff(session, username, password)
    if user is None:
        login_failed(request, username)
        return render(request, "login.html", {**context, "message": "用户名或密码错误"}, status_code=401)
    login_succeeded(request, username)
    sign_in(request, session, user)
    record_audit(session, Actor.staff(user, client_ip(request)), "sign_in", "staff_user", user.id or "")
    session.commit()
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
@public_page
def logout(request: Request, session: SessionDep) -> Response:
    """End the staff session (on the server: a copied cookie stops working too)."""
    user = current_staff(request)
    sign_out(request, session)
    if user is not None:
        record_audit(session, Actor.staff(user, client_ip(request)), "sign_out", "staff_user", user.id or "")
    session.commit()
    return RedirectResponse("/m/", status_code=303)
