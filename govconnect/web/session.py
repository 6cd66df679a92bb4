"""Staff sessions on the mobile site: signed cookie, the signed-in StaffUser on request.state, CSRF, login limits."""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlmodel import Session
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from govconnect.agencies.models import StaffUser
from govconnect.errors import Forbidden
from govconnect.settings import Settings

SESSION_COOKIE = "gc_session"
SESSION_MAX_AGE = 12 * 3600
LOGIN_LIMIT = parse("10/5minute")


class StaffUserMiddleware:
    """Loads the signed-in staff member named by the session into `request.state.staff_user`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            session = scope.get("session") or {}
            staff_id = session.get("staff_id")
            if isinstance(staff_id, int):
                fingerprint = str(session.get("staff_fp", ""))
                user = await anyio.to_thread.run_sync(_load_staff, scope, staff_id, fingerprint)
                if user is not None:
                    scope.setdefault("state", {})["staff_user"] = user
                else:
                    session.pop("staff_id", None)
        await self.app(scope, receive, send)


def _load_staff(scope: Scope, staff_id: int, fingerprint: str) -> StaffUser | None:
    engine = scope["app"].state.engine
    with Session(engine, expire_on_commit=False) as db:
        user = db.get(StaffUser, staff_id)
    # A changed password or a disabled account ends every session at once.
    if user is None or not user.active or not hmac.compare_digest(staff_fingerprint(user), fingerprint):
        return None
    return user


def staff_fingerprint(user: StaffUser) -> str:
    """A short value that changes when the password hash changes."""
    return user.password_hash[-16:]


def install_sessions(app: FastAPI, settings: Settings) -> None:
    """Add the signed session cookie (SECRET_KEY) and the staff loader; the cookie is Secure behind HTTPS."""
    app.add_middleware(StaffUserMiddleware)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key.get_secret_value(),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=settings.public_base_url.startswith("https://"),
    )
    app.state.login_limiter = MovingWindowRateLimiter(storage_from_string(settings.redis_url or "memory://"))


def sign_in(request: Request, user: StaffUser) -> None:
    """Start a fresh session for this staff member (a new CSRF token too)."""
    request.session.clear()
    request.session["staff_id"] = user.id
    request.session["staff_fp"] = staff_fingerprint(user)
    request.session["csrf"] = secrets.token_urlsafe(24)
    request.state.staff_user = user


def sign_out(request: Request) -> None:
    """End the session."""
    request.session.clear()
    request.state.staff_user = None


def current_staff(request: Request) -> StaffUser | None:
    """The signed-in staff member, if any."""
    user = getattr(request.state, "staff_user", None)
    return user if isinstance(user, StaffUser) else None


def csrf_token(request: Request) -> str:
    """This session's CSRF token (created on first use); forms carry it in a hidden field."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, submitted: str | None) -> bool:
    """True when a submitted form token matches the session's."""
    token = request.session.get("csrf")
    return isinstance(token, str) and bool(submitted) and hmac.compare_digest(token, submitted or "")


def login_allowed(request: Request, username: str) -> int:
    """0 when another login attempt is allowed, else seconds to wait; limits per client IP and per username."""
    limiter: MovingWindowRateLimiter = request.app.state.login_limiter
    ip = request.client.host if request.client else "-"
    wait = 0
    for key in (f"ip:{ip}", f"user:{username.lower()}"):
        if not limiter.hit(LOGIN_LIMIT, "login", key):
            reset = limiter.get_window_stats(LOGIN_LIMIT, "login", key).reset_time
            wait = max(wait, int(reset - time.time()) + 1)
    return wait


class StaffLoginRequired(Exception):
    """Raised by `require_staff`; answered with a redirect to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def require_staff(request: Request) -> StaffUser:
    """The signed-in staff member, or a redirect to /m/login."""
    user = current_staff(request)
    if user is None:
        raise StaffLoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return user


def require_role(*roles: str) -> Callable[[StaffUser], StaffUser]:
    """A dependency demanding one of these roles (admin always passes)."""

    def require_staff_role(user: Annotated[StaffUser, Depends(require_staff)]) -> StaffUser:
        if user.role not in roles and user.role != "admin":
            raise Forbidden("forbidden", "需要操作员权限 / operator role required")
        return user

    return require_staff_role


StaffDep = Annotated[StaffUser, Depends(require_staff)]


def install_login_redirect(app: FastAPI) -> None:
    """Answer StaffLoginRequired with a redirect to the sign-in page."""

    async def handler(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StaffLoginRequired)
        return RedirectResponse(f"/m/login?next={quote(exc.next_url, safe='')}", status_code=303)

    app.add_exception_handler(StaffLoginRequired, handler)


def client_ip(request: Request) -> str:
    """The client's address (the proxy in front must set it; we do not trust X-Forwarded-For blindly)."""
    return request.client.host if request.client else "-"


def form_value(form: Any, name: str) -> str:
    """A single string form field, empty when missing."""
    value = form.get(name)
    return value if isinstance(value, str) else ""
