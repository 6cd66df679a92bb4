"""Dependencies shared by routes: database session, caller identity, scopes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.engine import Engine
from sqlmodel import Session

from govconnect.agencies.models import Agency, ApiKey, StaffUser
from govconnect.agencies.service import lookup_api_key
from govconnect.audit.record import Actor, record_audit
from govconnect.clock import utcnow
from govconnect.errors import ApiError
from govconnect.settings import Settings


def get_settings_dep(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


def get_engine(request: Request) -> Engine:
    """The app's database engine."""
    return request.app.state.engine


def get_session(request: Request) -> Iterator[Session]:
    """A session per request; committed by the route's function, rolled back on error."""
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]

F = TypeVar("F", bound=Callable[..., Any])
KEY_REQUIRED = "required"
KEY_OPTIONAL = "optional"


def takes_key(kind: str, scope: str | None = None) -> Callable[[F], F]:
    """Mark a dependency that reads the Bearer key (`required` or `optional`, and the scope it demands).

    The OpenAPI hook (api/openapi.py) declares the security scheme and the 401/403/429 answers of
    every route whose dependencies carry the mark.
    """

    def mark(func: F) -> F:
        func.__dict__["takes_key"] = kind
        func.__dict__["required_scope"] = scope
        return func

    return mark


SessionDep = Annotated[Session, Depends(get_session)]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: an agency acting through one API key."""

    agency: Agency
    key: ApiKey
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        """True when the key carries the scope, or `admin`."""
        return scope in self.scopes or "admin" in self.scopes


class RateLimiter:
    """Per-key moving-window limit; storage is Redis when configured, else memory."""

    def __init__(self, settings: Settings) -> None:
        uri = settings.redis_url or "memory://"
        self.item: RateLimitItem = parse(settings.api_rate_limit)
        self.limiter = MovingWindowRateLimiter(storage_from_string(uri))

    def check(self, identity: str) -> None:
        """Raise 429 with Retry-After when the identity is over its limit."""
        if not self.limiter.hit(self.item, "api", identity):
            reset = self.limiter.get_window_stats(self.item, "api", identity).reset_time
            retry_after = max(1, int(reset - time.time()))
            raise ApiError(429, "rate_limited", headers={"Retry-After": str(retry_after)})


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


def _authenticate(request: Request, session: Session, token: str) -> Principal:
    record = lookup_api_key(session, token)
    if record is None:
        raise ApiError(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})
    if record.revoked_at is not None:
        raise ApiError(401, "key_revoked", headers={"WWW-Authenticate": "Bearer"})
    agency = session.get(Agency, record.agency_id)
    if agency is None:
        raise ApiError(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})
    request.app.state.rate_limiter.check(record.prefix)
    now = utcnow()
    if record.last_used_at is None or now - record.last_used_at > timedelta(minutes=1):
        record.last_used_at = now
        session.add(record)
        session.commit()
    request.state.agency_id = agency.id
    known_tokens = getattr(request.app.state, "known_tokens", None)
    if known_tokens is not None:
        known_tokens.learn(token, agency.id or 0)
    return Principal(agency=agency, key=record, scopes=frozenset(record.scopes))


@takes_key(KEY_REQUIRED)
def get_principal(request: Request, session: SessionDep) -> Principal:
    """The caller behind `Authorization: Bearer <key>`, or 401."""
    token = _bearer_token(request)
    if token is None:
        raise ApiError(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})
    return _authenticate(request, session, token)


@takes_key(KEY_OPTIONAL)
def get_optional_principal(request: Request, session: SessionDep) -> Principal | None:
    """The caller if credentials were presented (and valid), None for anonymous callers."""
    token = _bearer_token(request)
    if token is None:
        return None
    return _authenticate(request, session, token)


def client_address(request: Request) -> str:
    """The caller's address as the server saw it (the proxy in front must pass it on)."""
    return request.client.host if request.client else ""


def actor_for(principal: Principal, request: Request) -> Actor:
    """The audit actor for an API call: the key's prefix, its agency, the client's address."""
    return Actor.api_key(principal.key, client_address(request))


def audit_call(
    session: Session, principal: Principal, request: Request, action: str, target: str, changes: dict[str, Any]
) -> None:
    """Audit an API call's change in its transaction; `target` is "type:id" (e.g. "template:7")."""
    target_type, _, target_id = target.partition(":")
    record_audit(session, actor_for(principal, request), action, target_type, target_id, changes)


PrincipalDep = Annotated[Principal, Depends(get_principal)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(get_optional_principal)]


def require_scope(scope: str) -> Callable[[Principal], Principal]:
    """A dependency that demands a scope of the caller's key (403 otherwise)."""

    def checker(principal: PrincipalDep) -> Principal:
        if not principal.has(scope):
            raise ApiError(403, "forbidden", details={"required_scope": scope})
        return principal

    checker.__name__ = f"require_{scope.replace(':', '_')}"
    return takes_key(KEY_REQUIRED, scope)(checker)


@dataclass(frozen=True)
class Viewer:
    """Who is looking at directory data: anonymous public, an API key, or a signed-in staff member."""

    principal: Principal | None
    staff: StaffUser | None

    @property
    def privileged(self) -> bool:
        """Signed-in staff and keys with `contacts:write` see mobile/short numbers and staff-only contacts."""
        return self.staff is not None or (self.principal is not None and self.principal.has("contacts:write"))


@takes_key(KEY_OPTIONAL)
def get_viewer(request: Request, session: SessionDep) -> Viewer:
    """The viewer: a Bearer key if presented, and the staff user the session middleware put on request.state."""
    principal = get_optional_principal(request, session)
    staff = getattr(request.state, "staff_user", None)
    return Viewer(principal=principal, staff=staff if isinstance(staff, StaffUser) else None)


ViewerDep = Annotated[Viewer, Depends(get_viewer)]
