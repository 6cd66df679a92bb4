"""Factories for test data."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import Session

from govconnect.agencies import IssuedKey, create_agency, create_api_key
from govconnect.models import Agency


def make_agency(
    session: Session, code: str | None = None, name: str = "衢州市应急管理局", region: str = "衢州市"
) -> Agency:
    """An agency with a unique code."""
    agency = create_agency(session, name, code or f"ag-{uuid.uuid4().hex[:8]}", region)
    session.commit()
    return agency


def make_key(session: Session, agency: Agency, scopes: Sequence[str] = ("notices:send",)) -> IssuedKey:
    """An API key for the agency."""
    issued = create_api_key(session, agency, list(scopes))
    session.commit()
    return issued
