"""Subscriber data over the API: `subscribers:read` only, and always masked."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import col, select

from govconnect.api.deps import Principal, SessionDep, require_scope
from govconnect.api.openapi import media_responses
from govconnect.api.paging import Page, paging
from govconnect.citizens.models import Subscriber
from govconnect.citizens.subscriptions import masked_rows
from govconnect.escaping import spreadsheet_record

router = APIRouter(prefix="/api/v1/subscribers", tags=["subscribers"])
ReaderDep = Annotated[Principal, Depends(require_scope("subscribers:read"))]
EXPORT_FIELDS = ("id", "phone", "wechat_openid", "status", "channels", "categories", "regions", "source", "created_at")


class SubscriberPublic(BaseModel):
    """A subscriber as the API shows it: number and openid masked."""

    id: int
    phone: str
    wechat_openid: str
    status: str
    channels: list[str]
    categories: list[str]
    regions: list[str]
    source: str
    created_at: str
    unsubscribed_at: str | None


class SubscriberPage(BaseModel):
    """One page of subscribers and counts by status."""

    items: list[SubscriberPublic]
    total: int
    active: int
    limit: int
    offset: int


@router.get("", response_model=SubscriberPage)
def list_subscribers(
    _principal: ReaderDep,
    session: SessionDep,
    page: Annotated[Page, Depends(paging(default=100, maximum=500))],
) -> SubscriberPage:
    """Masked subscribers, oldest first."""
    rows = list(masked_rows(session, page.offset, page.limit))
    total = session.exec(select(func.count()).select_from(Subscriber)).one()
    active = session.exec(select(func.count()).select_from(Subscriber).where(col(Subscriber.status) == "active")).one()
    items = [
        SubscriberPublic(
            id=int(r["id"]),
            phone=r["phone"],
            wechat_openid=r["wechat_openid"],
            status=r["status"],
            channels=[c for c in r["channels"].split(",") if c],
            categories=[c for c in r["categories"].split(",") if c],
            regions=[c for c in r["regions"].split(",") if c],
            source=r["source"],
            created_at=r["created_at"],
            unsubscribed_at=r["unsubscribed_at"] or None,
        )
        for r in rows
    ]
    return SubscriberPage(items=items, total=total, active=active, limit=page.limit, offset=page.offset)


def masked_csv(session: SessionDep) -> str:
    """All subscribers as masked CSV text."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*EXPORT_FIELDS, "unsubscribed_at"], extrasaction="ignore")
    writer.writeheader()
    for row in masked_rows(session):
        writer.writerow(spreadsheet_record(row))
    return buffer.getvalue()


@router.get("/export.csv", response_class=Response, responses=media_responses("csv", with_json=False))
def export_subscribers(_principal: ReaderDep, session: SessionDep) -> Response:
    """A masked CSV export."""
    return Response(
        masked_csv(session),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="subscribers-masked.csv"'},
    )
