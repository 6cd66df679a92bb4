"""Console plumbing: its templates, who may open a page (role and agency), and the shared page context."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session
from starlette.templating import Jinja2Templates

from channels.catalogue import CATALOGUE
from govconnect.agencies.models import Agency, StaffUser
from govconnect.api.deps import SessionDep
from govconnect.audit.record import Actor
from govconnect.errors import NotFound
from govconnect.escaping import script_json, xml_text
from govconnect.notices.models import NOTICE_STATUS_NAMES
from govconnect.web.page_security import csp_nonce
from govconnect.web.rendering import localtime
from govconnect.web.session import client_ip, csrf_token, require_role

CONSOLE_DIR = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=CONSOLE_DIR / "templates")


def _printable(value: Any) -> Any:
    # Stored text loses characters no page may carry (NUL, other controls), as on the site's pages.
    return xml_text(value) if isinstance(value, str) and not hasattr(value, "__html__") else value


TEMPLATES.env.finalize = _printable
TEMPLATES.env.filters["localtime"] = localtime
TEMPLATES.env.filters["script_json"] = script_json
TEMPLATES.env.filters["tojson"] = script_json

# Who may do what in the console (admin always may): everyone signed in to the console reads.
READ_ROLES = ("operator", "approver")
DRAFT_ROLES = ("operator", "approver")
APPROVE_ROLES = ("approver",)

ROLE_NAMES = {"staff": "工作人员", "operator": "操作员", "approver": "审核人", "admin": "管理员"}
STATUS_NAMES = NOTICE_STATUS_NAMES
# What the office calls each channel (the catalogue's labels).
CHANNEL_NAMES = {info.name: info.label for info in CATALOGUE}
DELIVERY_STATUS_NAMES = {
    "queued": "排队",
    "sending": "发送中",
    "sent": "已发出",
    "delivered": "已送达",
    "failed": "失败",
    "cancelled": "已取消",
    "unknown": "未知",
    "suppressed": "免打扰未发",
    "capped": "超每日上限未发",
}
NAV = (
    ("dashboard", "/console/", "工作台"),
    ("compose", "/console/compose", "发布通知"),
    ("notices", "/console/notices", "通知"),
    ("approvals", "/console/approvals", "审核"),
    ("templates", "/console/templates", "模板"),
    ("audiences", "/console/audiences", "受众名单"),
    ("directory", "/console/directory", "通讯录"),
    ("reports", "/console/reports", "报表"),
)
ADMIN_NAV = (
    ("keys", "/console/keys", "API 密钥"),
    ("team", "/console/team", "团队"),
    ("subscribers", "/console/subscribers", "订阅用户"),
    ("suppressions", "/console/suppressions", "屏蔽名单"),
    ("settings", "/console/settings", "机构设置"),
    ("audit", "/console/audit", "审计日志"),
)

ConsoleUser = Annotated[StaffUser, Depends(require_role(*READ_ROLES))]
Drafter = Annotated[StaffUser, Depends(require_role(*DRAFT_ROLES))]
Approver = Annotated[StaffUser, Depends(require_role(*APPROVE_ROLES))]


def may(user: StaffUser, roles: tuple[str, ...]) -> bool:
    """Whether the user holds one of these roles (admin always does)."""
    return user.role == "admin" or user.role in roles


def user_agency(session: Session, user: StaffUser) -> Agency:
    """The agency the console user works for (a user without one sees nothing: 404)."""
    agency = session.get(Agency, user.agency_id)
    if agency is None:
        raise NotFound()
    return agency


def actor(request: Request, user: StaffUser) -> Actor:
    """The audit actor for a console action."""
    return Actor.staff(user, client_ip(request))


def staff_label(user: StaffUser) -> str:
    """The label notices record for their drafter (`staff:12`)."""
    return f"staff:{user.id}"


def render(
    request: Request,
    name: str,
    user: StaffUser,
    active: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a console page with the nav, the user, the CSRF token and the CSP nonce."""
    ctx: dict[str, Any] = {
        "user": user,
        "role_name": ROLE_NAMES.get(user.role, user.role),
        "nav": NAV + ADMIN_NAV if user.role == "admin" else NAV,
        "active": active,
        "csrf": csrf_token(request),
        "csp_nonce": csp_nonce(request),
        "status_names": STATUS_NAMES,
        "channel_names": CHANNEL_NAMES,
        "can_approve": may(user, APPROVE_ROLES),
        "can_draft": may(user, DRAFT_ROLES),
        "message": None,
        "message_kind": "ok",
    }
    ctx.update(context or {})
    response = TEMPLATES.TemplateResponse(request, name, ctx, status_code=status_code)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def drafter_names(session: SessionDep, labels: set[str]) -> dict[str, str]:
    """Display names for drafter labels (`staff:12` → 王丽; API keys keep their label)."""
    ids = [int(label.split(":", 1)[1]) for label in labels if label.startswith("staff:") and label[6:].isdigit()]
    names: dict[str, str] = {}
    for staff_id in ids:
        user = session.get(StaffUser, staff_id)
        if user is not None:
            names[f"staff:{staff_id}"] = user.display_name or user.username
    return names
