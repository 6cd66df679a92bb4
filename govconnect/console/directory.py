"""Console directory (通讯录): the department tree with counts, contacts by department, import with a row report
(admin: contacts are the city's directory, written by `contacts:write` keys in the API), and the CSV export.

The directory is shared by every agency (staff of any agency look everyone up); console users see staff-only
contacts and fields, as signed-in staff do on the phone pages.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from contacts.directory import directory_index
from contacts.importer import ImportFileError, ImportReport, export_rows, import_file
from contacts.models import Contact
from contacts.service import Tree
from govconnect.agencies.models import StaffUser
from govconnect.api.deps import SessionDep
from govconnect.api.params import RowId
from govconnect.audit.record import record_audit
from govconnect.console.compose import department_choices
from govconnect.console.pages import ConsoleUser, actor, render
from govconnect.escaping import spreadsheet_row
from govconnect.web.session import require_role, verify_csrf

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(verify_csrf)])
AdminUser = Annotated[StaffUser, Depends(require_role())]  # admin only
CONTACT_PAGE = 50
REPORT_LINES = 200


def _directory_page(
    request: Request,
    session: Session,
    user: StaffUser,
    department: int | None = None,
    page: int = 1,
    report: ImportReport | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    tree = Tree.load(session)
    query = select(Contact)
    if department is not None:
        query = query.where(col(Contact.department_id).in_(tree.descendants(department)))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Contact.id)).offset((page - 1) * CONTACT_PAGE).limit(CONTACT_PAGE)).all()
    context = {
        "departments": department_choices(session),
        "department": department,
        "contacts": [tree.record(c) for c in rows],
        "total": total,
        "page": page,
        "pages": max(1, -(-total // CONTACT_PAGE)),
        "report": report,
        "failed": report.failed[:REPORT_LINES] if report else [],
        "message": message,
        "message_kind": "error" if status_code >= 400 else "ok",
    }
    return render(request, "directory.html", user, "directory", context, status_code=status_code)


@router.get("/directory", response_class=HTMLResponse)
def directory_room(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    department: RowId | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """The department tree (with the people in each subtree) and the contacts of the chosen one, 50 a page."""
    return _directory_page(request, session, user, department, page)


def _import(session: Session, request: Request, upload: UploadFile, suffix: str) -> ImportReport:
    with tempfile.TemporaryDirectory(prefix="govconnect-import-") as folder:
        path = Path(folder) / f"contacts{suffix}"
        with path.open("wb") as out:
            while chunk := upload.file.read(1 << 20):
                out.write(chunk)
        return import_file(session, directory_index(request.app.state.settings.data_dir), path)


@router.post("/directory/import", response_class=HTMLResponse)
async def directory_import(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    contacts_file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Create or update contacts from a CSV/XLSX file (姓名, 部门 …); bad rows are listed by line and skipped."""
    filename = (contacts_file.filename or "") if contacts_file is not None else ""
    suffix = Path(filename).suffix.lower()
    if contacts_file is None or suffix not in (".csv", ".xlsx"):
        message = "请选择 CSV 或 XLSX 文件 / Choose a CSV or XLSX file"
        return _directory_page(request, session, user, message=message, status_code=422)
    try:
        report = await run_in_threadpool(_import, session, request, contacts_file, suffix)
    except ImportFileError as exc:
        session.rollback()
        return _directory_page(request, session, user, message=str(exc), status_code=422)
    finally:
        await contacts_file.close()
    record_audit(
        session,
        actor(request, user),
        "settings_change",
        "directory",
        "",
        {"op": "import", "file": filename[:100], "created": report.created, "updated": report.updated},
        user.agency_id,
    )
    session.commit()
    message = (
        f"导入完成：新增 {report.created}，更新 {report.updated}，失败 {len(report.failed)}（共 {report.total} 行）"
    )
    return _directory_page(request, session, user, report=report, message=message)


def _csv(session: Session) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in export_rows(session, chinese=True):
        writer.writerow(spreadsheet_row(row))
    return "\ufeff" + buffer.getvalue()  # BOM so spreadsheet programs read UTF-8 Chinese correctly


@router.get("/directory/export.csv")
def directory_export(session: SessionDep, user: AdminUser) -> Response:
    """Every contact as CSV with Chinese headers (re-importable; a city's directory fits in memory)."""
    return Response(
        _csv(session),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="contacts.csv"'},
    )
