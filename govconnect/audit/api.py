"""GET /api/v1/audit: the agency's audit log for its admins, as JSON pages or a CSV export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from govconnect.api.deps import Principal, SessionDep, require_scope
from govconnect.api.openapi import media_responses
from govconnect.api.paging import Page, paging
from govconnect.audit.models import AUDIT_ACTIONS
from govconnect.audit.queries import AuditFilter, audit_page, iter_audit
from govconnect.errors import ApiError
from govconnect.escaping import spreadsheet_row

router = APIRouter(prefix="/api/v1", tags=["audit"])
Admin = Annotated[Principal, Depends(require_scope("admin"))]
CSV_FIELDS = ("id", "at", "actor", "client_address", "action", "target_type", "target_id", "changes")


class AuditPublic(BaseModel):
    """One audit entry: who, when, from where, what, on which object, what changed."""

    id: int
    at: datetime
    actor: str
    client_address: str
    action: str
    target_type: str
    target_id: str
    changes: dict[str, Any]


class AuditPage(BaseModel):
    """One page of audit entries, newest first."""

    items: list[AuditPublic]
    total: int
    limit: int
    offset: int


def _public(row: Any) -> AuditPublic:
    return AuditPublic(
        id=row.id,
        at=row.at,
        actor=row.actor,
        client_address=row.client_address,
        action=row.action,
        target_type=row.target_type,
        target_id=row.target_id,
        changes=row.changes or {},
    )


@router.get(
    "/audit",
    response_model=AuditPage,
    responses=media_responses("csv"),
    summary="The agency's audit log (admin; JSON or CSV)",
)
def audit_list(
    request: Request,
    principal: Admin,
    session: SessionDep,
    page: Annotated[Page, Depends(paging(default=50, maximum=200, legacy=True))],
    action: str | None = None,
    actor: Annotated[str | None, Query(max_length=80)] = None,
    target_type: Annotated[str | None, Query(max_length=40)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    format: Literal["json", "csv"] = "json",
) -> AuditPage | StreamingResponse:
    """Who did what, when and from where in this agency, newest first; `format=csv` exports every match."""
    if action is not None and action not in AUDIT_ACTIONS:
        raise ApiError(422, "validation_error", details={"action": action, "allowed": list(AUDIT_ACTIONS)})
    filters = AuditFilter(principal.agency.id or 0, action, actor, target_type, target_id, since, until)
    if format == "csv":
        return StreamingResponse(
            _csv_lines(_public(r) for r in iter_audit(request.app.state.engine, filters)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
        )
    rows, total = audit_page(session.connection(), filters, page.limit, page.offset)
    return AuditPage(items=[_public(r) for r in rows], total=total, limit=page.limit, offset=page.offset)


def _csv_lines(items: Iterable[AuditPublic]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_FIELDS)
    yield "\ufeff" + buffer.getvalue()  # BOM so spreadsheet programs read UTF-8 Chinese correctly
    for item in items:
        buffer.seek(0)
        buffer.truncate()
        data = item.model_dump(mode="json")
        data["changes"] = json.dumps(data["changes"], ensure_ascii=False, sort_keys=True)
        writer.writerow(spreadsheet_row(data[name] for name in CSV_FIELDS))
        yield buffer.getvalue()
