"""Staff directory on the phone: search with instant results, department tree, contact cards."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import col, select

from contacts.directory import search_directory
from contacts.models import Contact, Department
from contacts.service import Tree
from govconnect.api.deps import SessionDep, SettingsDep
from govconnect.api.params import RowId
from govconnect.web.rendering import TEMPLATES, error_page, render
from govconnect.web.session import StaffDep, verify_csrf
from search.analyzer import QueryError

router = APIRouter(prefix="/m/staff", include_in_schema=False, dependencies=[Depends(verify_csrf)])
Q = Annotated[str, Query(max_length=100)]


def _search(settings: Any, q: str) -> tuple[list[dict[str, Any]], int, str | None]:
    if not q.strip():
        return [], 0, None
    try:
        result = search_directory(settings.data_dir, q, privileged=True, limit=30)
    except QueryError as exc:
        return [], 0, exc.message
    return result.items, result.total, None


@router.get("/", response_class=HTMLResponse)
def staff_home(request: Request, session: SessionDep, settings: SettingsDep, staff: StaffDep, q: Q = "") -> Response:
    """Directory search; results render on the server, the script only refreshes them while typing."""
    items, total, error = _search(settings, q)
    return render(
        request,
        "staff_home.html",
        {"q": q, "results": items, "total": total, "message": error, "message_kind": "error"},
        session=session,
    )


@router.get("/search.frag", response_class=HTMLResponse)
def staff_search_fragment(request: Request, settings: SettingsDep, staff: StaffDep, q: Q = "") -> Response:
    """Just the results list, for instant search."""
    items, total, error = _search(settings, q)
    return TEMPLATES.TemplateResponse(
        request,
        "staff_results.html",
        {"q": q, "results": items, "total": total, "error": error},
        headers={"Cache-Control": "private, no-store"},
    )


@router.get("/contacts/{contact_id}", response_class=HTMLResponse)
def contact_card(request: Request, session: SessionDep, staff: StaffDep, contact_id: RowId) -> Response:
    """One contact with tel: and sms: links for office, mobile and short numbers."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        return error_page(request, 404, "联系人不存在")
    record = Tree.load(session).record(contact).display()
    return render(request, "contact.html", {"c": record}, session=session)


@router.get("/departments", response_class=HTMLResponse)
def department_tree(request: Request, session: SessionDep, staff: StaffDep) -> Response:
    """The department tree, in tree order."""
    infos = sorted(Tree.load(session).infos(), key=lambda d: d.rank)
    return render(request, "departments.html", {"departments": infos}, session=session)


@router.get("/departments/{department_id}", response_class=HTMLResponse)
def department_page(request: Request, session: SessionDep, staff: StaffDep, department_id: RowId) -> Response:
    """A department's sub-departments and people."""
    dept = session.get(Department, department_id)
    if dept is None:
        return error_page(request, 404, "部门不存在")
    tree = Tree.load(session)
    children = session.exec(
        select(Department).where(Department.parent_id == department_id).order_by(col(Department.sort_order))
    ).all()
    people = session.exec(
        select(Contact).where(Contact.department_id == department_id).order_by(col(Contact.sort_order), col(Contact.id))
    ).all()
    return render(
        request,
        "department.html",
        {"dept": dept, "path": dept.path, "children": children, "people": [tree.record(p).display() for p in people]},
        session=session,
    )
