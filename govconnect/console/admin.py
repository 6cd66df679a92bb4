"""Console admin rooms: API keys (created with scopes and shown once, revoked) and the team's staff accounts.
Also the agency's templates, read-only (open one to compose from it). Another agency's key or template is 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from govconnect.agencies.models import ROLES, SCOPES, ApiKey, StaffUser
from govconnect.agencies.service import create_api_key, create_staff, revoke_api_key
from govconnect.api.deps import SessionDep
from govconnect.api.params import RowId
from govconnect.audit.record import record_audit
from govconnect.console.library import versions
from govconnect.console.pages import ROLE_NAMES, ConsoleUser, actor, render, user_agency
from govconnect.errors import DomainError, NotFound
from govconnect.message_templates import service as templates
from govconnect.text_rules import Text
from govconnect.web.session import require_role, verify_csrf

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(verify_csrf)])
AdminUser = Annotated[StaffUser, Depends(require_role())]  # admin only
SCOPE_NAMES = {
    "notices:send": "发送通知",
    "notices:read": "查看通知",
    "notices:approve": "审核通知",
    "contacts:write": "维护通讯录",
    "subscribers:read": "查看订阅者",
    "admin": "管理（策略、密钥、设置）",
}
ListForm = Annotated[list[Text], Form()]


def _key(session: Session, user: StaffUser, key_id: int) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None or key.agency_id != user.agency_id:
        raise NotFound()
    return key


def _keys_page(
    request: Request,
    session: Session,
    user: StaffUser,
    issued: str | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    keys = session.exec(select(ApiKey).where(ApiKey.agency_id == user.agency_id).order_by(col(ApiKey.id).desc())).all()
    context = {
        "keys": keys,
        "scopes": SCOPES,
        "scope_names": SCOPE_NAMES,
        "issued": issued,
        "message": message,
        "message_kind": "error" if status_code >= 400 else "ok",
    }
    response = render(request, "keys.html", user, "keys", context, status_code=status_code)
    if issued:
        response.headers["Cache-Control"] = "no-store"  # the key is shown once and never cached
    return response


@router.get("/keys", response_class=HTMLResponse)
def keys_page(request: Request, session: SessionDep, user: AdminUser) -> Response:
    """The agency's API keys and the form that issues one."""
    return _keys_page(request, session, user)


@router.post("/keys", response_class=HTMLResponse)
def key_create(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    name: Annotated[Text, Form(max_length=100)] = "",
    scope: ListForm = [],  # noqa: B006
) -> Response:
    """Issue a key with the chosen scopes; the page shows it this once (only its hash is kept)."""
    try:
        issued = create_api_key(session, user_agency(session, user), scope, name.strip(), actor(request, user))
    except DomainError as exc:
        session.rollback()
        return _keys_page(request, session, user, message=exc.message, status_code=exc.status)
    session.commit()
    return _keys_page(
        request, session, user, issued=issued.key, message="密钥已创建：请立即复制保存，离开本页后无法再次查看"
    )


@router.get("/keys/{key_id}", response_class=HTMLResponse)
def key_detail(request: Request, session: SessionDep, user: AdminUser, key_id: RowId) -> Response:
    """One key: its scopes, when it was last used, revoke."""
    key = _key(session, user, key_id)
    return render(request, "key.html", user, "keys", {"key": key, "scope_names": SCOPE_NAMES})


@router.post("/keys/{key_id}/revoke")
def key_revoke(request: Request, session: SessionDep, user: AdminUser, key_id: RowId) -> Response:
    """Revoke the key at once (a revoked key is refused with 401 key_revoked)."""
    key = _key(session, user, key_id)
    revoke_api_key(session, key.prefix, actor(request, user))
    session.commit()
    return RedirectResponse(f"/console/keys/{key.id}", status_code=303)


def _team_page(
    request: Request, session: Session, user: StaffUser, message: str | None = None, status_code: int = 200
) -> HTMLResponse:
    members = session.exec(
        select(StaffUser).where(StaffUser.agency_id == user.agency_id).order_by(col(StaffUser.id))
    ).all()
    context = {
        "members": members,
        "roles": ROLES,
        "role_names": ROLE_NAMES,
        "message": message,
        "message_kind": "error" if status_code >= 400 else "ok",
    }
    return render(request, "team.html", user, "team", context, status_code=status_code)


@router.get("/team", response_class=HTMLResponse)
def team_page(request: Request, session: SessionDep, user: AdminUser) -> Response:
    """The agency's staff accounts and their roles; the form that adds one."""
    return _team_page(request, session, user)


@router.post("/team", response_class=HTMLResponse)
def team_create(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    username: Annotated[Text, Form(max_length=64)] = "",
    display_name: Annotated[Text, Form(max_length=100)] = "",
    role: Annotated[Text, Form(max_length=16)] = "staff",
    password: Annotated[Text, Form(max_length=256)] = "",
    phone: Annotated[Text, Form(max_length=20)] = "",
) -> Response:
    """Create a staff account in the admin's agency (audited)."""
    agency = user_agency(session, user)
    try:
        member = create_staff(
            session, username.strip(), agency, role, password, display_name.strip(), phone.strip() or None
        )
        record_audit(
            session, actor(request, user), "staff_create", "staff_user", member.id or "", {"role": role}, agency.id
        )
    except DomainError as exc:
        session.rollback()
        return _team_page(request, session, user, exc.message, exc.status)
    session.commit()
    return _team_page(request, session, user, f"已创建账号 {member.username}（{ROLE_NAMES.get(role, role)}）")


@router.get("/templates", response_class=HTMLResponse)
def template_list(request: Request, session: SessionDep, user: ConsoleUser) -> Response:
    """The agency's templates (drafters create and edit them in library.py)."""
    rows, _total = templates.list_templates(session, user.agency_id, 200, 0)
    return render(request, "templates.html", user, "templates", {"rows": rows})


@router.get("/templates/{template_id}", response_class=HTMLResponse)
def template_detail(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    template_id: RowId,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """One template at its current version (or an older one), each channel's text, its versions, compose from it."""
    template = templates.get_template(session, user.agency_id, template_id)
    view = templates.public(template, templates.version_of(session, template, version))
    context = {
        "t": view,
        "current": template.version,
        "versions": versions(session, template),
        "message": {"saved": "已保存为新版本", "unchanged": "内容没有变化，未生成新版本"}.get(done),
    }
    return render(request, "template.html", user, "templates", context)
