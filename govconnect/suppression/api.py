"""Suppression list API: operators look up, add and remove numbers (every change audited)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from govconnect.api.deps import Principal, SessionDep, SettingsDep, audit_call, require_scope
from govconnect.audiences.rows import MOBILE
from govconnect.citizens.optout import normalise_phone
from govconnect.errors import ApiError
from govconnect.suppression import service
from govconnect.suppression.models import Suppression
from govconnect.text_rules import Text

log = logging.getLogger("govconnect.suppression")
router = APIRouter(prefix="/api/v1", tags=["suppression"])
Operator = Annotated[Principal, Depends(require_scope("admin"))]
Reader = Annotated[Principal, Depends(require_scope("subscribers:read"))]


class SuppressionCreate(BaseModel):
    """A number to stop normal notices to, and why."""

    model_config = ConfigDict(extra="forbid")

    phone: Text = Field(min_length=11, max_length=20)
    reason: Text = Field(default="", max_length=200)


class SuppressionPublic(BaseModel):
    """An entry: the number only masked (only its keyed hash is stored)."""

    id: int
    phone: str
    source: str
    reason: str
    created_at: datetime


class SuppressionPage(BaseModel):
    """One page of entries, newest first."""

    items: list[SuppressionPublic]
    total: int
    limit: int
    offset: int


def _public(entry: Suppression) -> SuppressionPublic:
    return SuppressionPublic(
        id=entry.id or 0, phone=entry.phone_hint, source=entry.source, reason=entry.reason, created_at=entry.created_at
    )


def _mobile(phone: str) -> str:
    number = normalise_phone(phone)
    if not MOBILE.match(number):
        raise ApiError(422, "invalid_phone", "手机号无效 / Invalid mobile number", {"field": "phone"})
    return number


@router.get("/suppressions", response_model=SuppressionPage, summary="The suppression list")
def suppressions_list(
    principal: Reader,
    session: SessionDep,
    settings: SettingsDep,
    phone: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> SuppressionPage:
    """Entries newest first; `phone` answers whether one number is on the list."""
    key = service.phone_key(settings.secret_key.get_secret_value(), _mobile(phone)) if phone else None
    rows, total = service.list_entries(session, limit, offset, key)
    return SuppressionPage(items=[_public(r) for r in rows], total=total, limit=limit, offset=offset)


@router.post("/suppressions", response_model=SuppressionPublic, status_code=201, summary="Suppress a number")
def suppressions_add(
    request: Request, body: SuppressionCreate, principal: Operator, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    """Stop normal notices to a number from every agency (201; 200 when it was already on the list)."""
    number = _mobile(body.phone)
    entry, created = service.suppress(
        session, settings.secret_key.get_secret_value(), number, "operator", body.reason, principal.agency.id
    )
    if created:
        audit_call(
            session,
            principal,
            request,
            "suppression_change",
            f"suppression:{entry.id}",
            {"op": "add", "phone": entry.phone_hint, "reason": body.reason},
        )
    session.commit()
    return JSONResponse(_public(entry).model_dump(mode="json"), status_code=201 if created else 200)


@router.delete("/suppressions/{entry_id}", status_code=204, summary="Remove a number from the list")
def suppressions_remove(
    request: Request, entry_id: Annotated[int, Path(ge=1, le=2**31 - 1)], principal: Operator, session: SessionDep
) -> Response:
    """Let normal notices reach the number again: only entries this agency added (others are 404); audited."""
    entry = service.removable_entry(session, entry_id, principal.agency.id)
    service.remove(session, entry)
    audit_call(
        session,
        principal,
        request,
        "suppression_change",
        f"suppression:{entry_id}",
        {"op": "remove", "phone": entry.phone_hint, "source": entry.source},
    )
    session.commit()
    return Response(status_code=204)
