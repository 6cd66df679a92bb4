"""Audience files API: upload (multipart CSV/XLSX) with a row report, list, read, refused rows, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from govconnect.api.deps import Principal, SessionDep, require_scope
from govconnect.audiences import lists
from govconnect.audiences.models import AudienceList
from govconnect.audiences.reader import FileRefused
from govconnect.errors import ApiError
from govconnect.text_rules import Text

router = APIRouter(prefix="/api/v1", tags=["audiences"])
Sender = Annotated[Principal, Depends(require_scope("notices:send"))]
Reader = Annotated[Principal, Depends(require_scope("notices:read"))]
UPLOAD_PATH = "/api/v1/audiences"
ListId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class RefusedRow(BaseModel):
    """A file row that was not accepted: its line (header = line 1) and a reason code."""

    line: int
    reason: str


class AudienceListPublic(BaseModel):
    """A saved audience list and what became of its file's rows."""

    id: int
    name: str
    filename: str
    columns: list[str]
    rows_read: int
    accepted: int
    refused: int
    duplicates: int
    created_at: datetime
    # In the upload's answer: the first 1,000 refused rows (all of them at …/refused).
    refused_rows: list[RefusedRow] | None = None


class AudienceListPage(BaseModel):
    """One page of saved lists."""

    items: list[AudienceListPublic]
    total: int
    limit: int
    offset: int


class RefusedPage(BaseModel):
    """Refused rows in file order; ask again with `after_line` = `next_after_line` for more."""

    items: list[RefusedRow]
    next_after_line: int | None


def _public(saved: AudienceList, refused: list[tuple[int, str]] | None = None) -> AudienceListPublic:
    return AudienceListPublic(
        id=saved.id or 0,
        name=saved.name,
        filename=saved.filename,
        columns=list(saved.columns),
        rows_read=saved.rows_read,
        accepted=saved.accepted,
        refused=saved.refused,
        duplicates=saved.duplicates,
        created_at=saved.created_at,
        refused_rows=None if refused is None else [RefusedRow(line=line, reason=r) for line, r in refused],
    )


@router.post("/audiences", status_code=201, response_model=AudienceListPublic, summary="Upload an audience file")
async def upload_audience(
    request: Request,
    principal: Sender,
    file: Annotated[UploadFile, File(description="CSV (UTF-8 or GB18030) or XLSX; 手机号/phone column")],
    name: Annotated[Text, Form(max_length=200)] = "",
) -> AudienceListPublic:
    """Stream the file into a saved list; the answer reports rows accepted, refused (line, reason) and merged."""
    filename = file.filename or ""
    try:
        saved, report = await run_in_threadpool(
            lists.import_audience_file,
            request.app.state.engine,
            principal.agency.id or 0,
            name.strip() or filename or "audience",
            file.file,
            filename,
        )
    except FileRefused as exc:
        raise ApiError(422, exc.code, exc.message) from exc
    finally:
        await file.close()
    return _public(saved, report.refused)


@router.get("/audiences", response_model=AudienceListPage, summary="Saved audience lists")
def audiences_list(
    principal: Reader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AudienceListPage:
    """The agency's saved lists, newest first."""
    rows, total = lists.agency_lists(session, principal.agency.id or 0, limit, offset)
    return AudienceListPage(items=[_public(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/audiences/{list_id}", response_model=AudienceListPublic, summary="A saved audience list")
def audience_detail(list_id: ListId, principal: Reader, session: SessionDep) -> Any:
    """One list and its report."""
    return _public(lists.get_list(session, principal.agency.id or 0, list_id))


@router.get("/audiences/{list_id}/refused", response_model=RefusedPage, summary="Every refused row of a list")
def audience_refused(
    request: Request,
    list_id: ListId,
    principal: Reader,
    session: SessionDep,
    after_line: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> RefusedPage:
    """Refused rows with line and reason, in file order, a page at a time."""
    lists.get_list(session, principal.agency.id or 0, list_id)
    rows = lists.refused_rows(session.connection(), list_id, after_line, limit)
    items = [RefusedRow(line=line, reason=reason) for line, reason in rows]
    return RefusedPage(items=items, next_after_line=rows[-1][0] if len(rows) == limit else None)


@router.delete("/audiences/{list_id}", status_code=204, summary="Delete a saved audience list")
def audience_delete(request: Request, list_id: ListId, principal: Sender, session: SessionDep) -> Response:
    """Remove the list and its rows; notices already accepted keep what they wrote."""
    lists.get_list(session, principal.agency.id or 0, list_id)
    session.rollback()
    lists.delete_list(request.app.state.engine, list_id)
    return Response(status_code=204)
