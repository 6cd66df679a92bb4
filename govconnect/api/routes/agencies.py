"""The calling agency and its keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from govconnect.agencies.service import list_agencies, list_api_keys
from govconnect.api.deps import Principal, PrincipalDep, SessionDep, require_scope

router = APIRouter(prefix="/api/v1", tags=["agencies"])


class AgencyPublic(BaseModel):
    """An agency as callers see it."""

    id: int
    code: str
    name: str
    region: str
    created_at: datetime


class MeResponse(AgencyPublic):
    """The calling agency plus the key in use."""

    key_prefix: str
    scopes: list[str]


class KeyPublic(BaseModel):
    """A key as listed: prefix only, never the secret or its hash."""

    prefix: str
    name: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@router.get("/agencies/me", response_model=MeResponse, summary="The agency behind this key")
def agencies_me(principal: PrincipalDep) -> MeResponse:
    """The calling agency."""
    agency = principal.agency
    return MeResponse(
        id=agency.id or 0,
        code=agency.code,
        name=agency.name,
        region=agency.region,
        created_at=agency.created_at,
        key_prefix=principal.key.prefix,
        scopes=sorted(principal.scopes),
    )


@router.get("/agencies/me/keys", response_model=list[KeyPublic], summary="This agency's keys (prefix only)")
def agency_keys(
    principal: Annotated[Principal, Depends(require_scope("admin"))], session: SessionDep
) -> list[KeyPublic]:
    """List the calling agency's keys; requires `admin`."""
    return [KeyPublic.model_validate(k, from_attributes=True) for k in list_api_keys(session, principal.agency)]


@router.get("/agencies", response_model=list[AgencyPublic], summary="All agencies")
def agencies_list(
    _principal: Annotated[Principal, Depends(require_scope("admin"))], session: SessionDep
) -> list[AgencyPublic]:
    """List every agency; requires `admin`."""
    return [AgencyPublic.model_validate(a, from_attributes=True) for a in list_agencies(session)]
