"""Staff sessions on the mobile site: signed cookie naming a server-side session, the signed-in StaffUser on
request.state, CSRF, login limits.

The cookie holds only a random session id and the CSRF token (no user id, phone or password
fragment); `govconnect.agencies.sessions` says whether the session is live, so signing out ends it everywhere.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from govconnect.agencies.models import StaffUser
from govconnect.agencies.sessions import SESSION_LIFETIME, open_session, revoke_session, session_user
from govconnect.errors import DomainError, Forbidden
from govconnect.security import secrets_equal
from govconnect.settings import Settings
from govconnect.web.login_throttle import CounterStore, LoginThrottle, MemoryCounters, RedisCounters, normalise_username

SESSION_COOKIE = "gc_session"
SESSION_MAX_AGE = int(SESSION_LIFETIME.total_seconds())


class StaffUserMiddleware:
    """Loads the signed-in staff member named by the session into `request.state.staff_user`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            session = scope.get("session") or {}
            session_id = session.get("sid")
            if isinstance(session_id, str) and session_id:
                user = await anyio.to_thread.run_sync(session_user, scope["app"].state.engine, session_id)
                if user is not None:
                    scope.setdefault("state", {})["staff_user"] = user
                else:
                    session.pop("sid", None)
        await self.app(scope, receive, send)


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
    store: CounterStore = MemoryCounters()
    if settings.redis_url:
        store = RedisCounters(settings.redis_url, f"{settings.queue_name}:login:")
    app.state.login_throttle = LoginThrottle(store)


def sign_in(request: Request, db: Session, user: StaffUser) -> None:
    """Start a fresh server-side session for this staff member (a new CSRF token too); the caller commits."""
    request.session.clear()
    request.session["sid"] = open_session(db, user)
    request.session["csrf"] = secrets.token_urlsafe(24)
    request.state.staff_user = user


def sign_out(request: Request, db: Session) -> None:
    """End the session on the server and in the browser; the caller commits."""
    session_id = request.session.get("sid")
    if isinstance(session_id, str) and session_id:
        revoke_session(db, session_id)
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
    if not isinstance(token, str) or not submitted:
        return False
    return secrets_equal(token, submitted)


class CsrfRejected(DomainError):
    """A form posted without this session's CSRF token (answered 400 with the site's error page)."""

    default_code = "csrf_failed"

    def __init__(self) -> None:
        super().__init__(message="页面已过期，请刷新后重试 / the form has expired, reload the page and try again")


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def verify_csrf(request: Request) -> None:
    """Every page router's dependency: an unsafe request must carry the session's token in the `csrf` field."""
    if request.method not in UNSAFE_METHODS:
        return
    form = await request.form()  # Starlette caches the parsed form; the route reads the same one
    submitted = form.get("csrf")
    if not isinstance(submitted, str) or not csrf_ok(request, submitted):
        raise CsrfRejected()


def login_wait(request: Request, username: str) -> int:
    """0 when this sign-in attempt may go ahead, else seconds to wait (per address, and per account)."""
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle.wait_seconds(client_ip(request), normalise_username(username))


def login_failed(request: Request, username: str) -> None:
    """Count a failed sign-in against the address and the account."""
    throttle: LoginThrottle = request.app.state.login_throttle
    throttle.failed(client_ip(request), normalise_username(username))


def login_succeeded(request: Request, username: str) -> None:
    """A correct password resets the account's count."""
    throttle: LoginThrottle = request.app.state.login_throttle
    throttle.succeeded(client_ip(request), normalise_username(username))


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
    """The client's address as uvicorn checked it (X-Forwarded-For only from FORWARDED_ALLOW_IPS proxies)."""
    return request.client.host if request.client else "-"


def form_value(form: Any, name: str) -> str:
    """A single string form field, empty when missing."""
    value = form.get(name)
    return value if isinstance(value, str) else ""
