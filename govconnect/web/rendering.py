"""Jinja2 templates for the site and the context every page gets (staff, CSRF token, urgent banner)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlmodel import Session
from starlette.templating import Jinja2Templates

from govconnect.clock import CHINA_TZ
from govconnect.escaping import script_json, xml_text
from govconnect.web.page_security import csp_nonce
from govconnect.web.queries import urgent_notices
from govconnect.web.session import csrf_token, current_staff

SITE_NAME = "衢州政务发布"
STAFF_PREFIX = "/m/staff/"


def _page_security_context(request: Request) -> dict[str, Any]:
    # Every template gets the response's CSP nonce: `<script nonce="{{ csp_nonce }}">`.
    return {"csp_nonce": csp_nonce(request)}


TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates", context_processors=[_page_security_context])


def localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC timestamp shown in China Standard Time."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(CHINA_TZ).strftime(fmt)


def tel(number: str) -> str:
    """A dialable tel:/sms: target: digits, `+` and `,` (extension pause) only."""
    return "".join(ch for ch in number if ch.isdigit() or ch in "+,")


def _printable(value: Any) -> Any:
    # Every {{ value }} loses characters no page may carry (NUL, other controls): stored text cannot break a page.
    if isinstance(value, Markup):
        return Markup(xml_text(value))  # noqa: S704 - already markup (script_json), only characters removed
    return xml_text(value) if isinstance(value, str) else value


TEMPLATES.env.finalize = _printable
TEMPLATES.env.filters["localtime"] = localtime
TEMPLATES.env.filters["tel"] = tel
# One way to put data into a script: both names give the same escaping (`<`, `>`, `&`, `'`, U+2028/9).
TEMPLATES.env.filters["script_json"] = script_json
TEMPLATES.env.filters["tojson"] = script_json


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    session: Session | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    region: str | None = None,
) -> HTMLResponse:
    """Render a page with the shared context; the urgent banner needs a database session (and follows `region`).

    Staff pages (/m/staff/…) show one compact banner line, so a phone still sees the search box first.
    """
    staff_page = request.url.path.startswith(STAFF_PREFIX)
    urgent = urgent_notices(session, region=region) if session is not None else []
    ctx: dict[str, Any] = {
        "site_name": SITE_NAME,
        "staff": current_staff(request),
        "csrf": csrf_token(request),
        "urgent": urgent[:1] if staff_page else urgent[:3],
        "urgent_more": max(0, len(urgent) - 1) if staff_page else 0,
        "urgent_compact": staff_page,
        "message": None,
        "message_kind": "ok",
    }
    ctx.update(context or {})
    response = TEMPLATES.TemplateResponse(request, name, ctx, status_code=status_code, headers=headers)
    # Pages carry a CSRF token tied to the session and may show private data: never cache them in shared caches.
    response.headers.setdefault("Cache-Control", "private, no-cache")
    return response


def error_page(request: Request, status_code: int, heading: str, detail: str = "") -> HTMLResponse:
    """A small HTML error page for the site (the API keeps its JSON errors)."""
    return render(request, "error.html", {"heading": heading, "detail": detail}, status_code=status_code)


def public_page(func: Any) -> Any:
    """Mark a page route as public on purpose (the route-auth meta-test honours the mark)."""
    func.public = True
    return func
