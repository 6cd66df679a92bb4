"""The government directory: contacts, departments and search (privacy by viewer)."""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from contacts import crud
from contacts.directory import directory_index, search_directory
from contacts.index_sync import follower_for
from contacts.models import Contact, Department
from contacts.service import DirectoryError, Tree
from govconnect.api.deps import Principal, SessionDep, ViewerDep, require_scope
from govconnect.api.params import Offset, RowId
from govconnect.errors import ApiError
from govconnect.text_rules import Text, TitleText
from search.analyzer import QueryError
from search.engine import Fallback
from search.index import DirectoryIndex

log = logging.getLogger("govconnect.directory")
router = APIRouter(prefix="/api/v1", tags=["directory"])
WriterDep = Annotated[Principal, Depends(require_scope("contacts:write"))]


async def warm_directory(app: Any) -> None:
    """Startup hook: open the index and load jieba in the background, so the first search is fast;
    then follow the database's change log, so changes made through other nodes reach this one."""
    ix = directory_index(app.state.settings.data_dir)
    follower = follower_for(app.state.engine, ix)

    def warm() -> None:
        try:
            with ix.snapshots.use():
                pass
            ix.segmenter.cut("衢州")
        except Exception:  # noqa: BLE001 - warming is best effort; a search reports real problems
            log.warning("directory index warm-up failed", exc_info=True)

    async def stop_following(_app: Any) -> None:
        follower.stop(timeout=2.0)

    threading.Thread(target=warm, name="directory-warmup", daemon=True).start()
    # In-process test apps share one database whose tables the tests empty between them: they do not
    # follow it (the follower is tested directly, and with real `serve` processes in test_index_nodes).
    if not app.state.settings.test_mode:
        app.state.shutdown_hooks.append(stop_following)
        follower.start()


def _index(request: Request) -> DirectoryIndex:
    return directory_index(request.app.state.settings.data_dir)


class ContactCreate(BaseModel):
    """A new contact; `department` is a path such as 衢州市人民政府办公室/秘书一处 (created if missing)."""

    model_config = ConfigDict(extra="forbid")

    name: TitleText = Field(min_length=1, max_length=50)
    department: Text | None = Field(default=None, max_length=500)
    department_id: RowId | None = None
    position: Text = Field(default="", max_length=100)
    office_phone: Text = Field(default="", max_length=40)
    mobile: Text = Field(default="", max_length=20)
    short_number: Text = Field(default="", max_length=12)
    email: Text = Field(default="", max_length=200)
    region: Text = Field(default="", max_length=50)
    visibility: Literal["public", "staff"] = "public"
    sort_order: int = Field(default=0, ge=0, le=100_000)
    external_id: Text | None = Field(default=None, max_length=64)
    dingtalk_userid: Text = Field(default="", max_length=64)


class ContactUpdate(BaseModel):
    """Fields to change; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: TitleText | None = Field(default=None, min_length=1, max_length=50)
    department: Text | None = Field(default=None, max_length=500)
    department_id: RowId | None = None
    position: Text | None = Field(default=None, max_length=100)
    office_phone: Text | None = Field(default=None, max_length=40)
    mobile: Text | None = Field(default=None, max_length=20)
    short_number: Text | None = Field(default=None, max_length=12)
    email: Text | None = Field(default=None, max_length=200)
    region: Text | None = Field(default=None, max_length=50)
    visibility: Literal["public", "staff"] | None = None
    sort_order: int | None = Field(default=None, ge=0, le=100_000)
    external_id: Text | None = Field(default=None, max_length=64)
    dingtalk_userid: Text | None = Field(default=None, max_length=64)


class DepartmentCreate(BaseModel):
    """A new department under `parent_id` (or at the top)."""

    model_config = ConfigDict(extra="forbid")

    name: TitleText = Field(min_length=1, max_length=100)
    parent_id: RowId | None = None
    aliases: list[Text] = Field(default_factory=list, max_length=20)
    sort_order: int | None = Field(default=None, ge=0, le=100_000)
    region: Text | None = Field(default=None, max_length=50)


class DepartmentUpdate(BaseModel):
    """Rename, move, re-alias or re-order a department."""

    model_config = ConfigDict(extra="forbid")

    name: TitleText | None = Field(default=None, min_length=1, max_length=100)
    parent_id: RowId | None = None
    aliases: list[Text] | None = Field(default=None, max_length=20)
    sort_order: int | None = Field(default=None, ge=0, le=100_000)


class DepartmentPublic(BaseModel):
    """A department as anyone sees it."""

    id: int
    parent_id: int | None
    name: str
    path: str
    aliases: list[str]
    sort_order: int


class SearchResponse(BaseModel):
    """Search answer: exact total, one page of items, time taken."""

    total: int
    items: list[dict[str, Any]]
    limit: int
    offset: int
    took_ms: float
    fallback: Fallback | None = Field(
        default=None, description="null: exact hits; else nothing matched every word and this fallback answered"
    )


def _contact_out(record: dict[str, Any], privileged: bool) -> dict[str, Any]:
    out = dict(record)
    if not privileged:
        for name in ("mobile", "short_number", "email"):
            out.pop(name, None)
    return out


def _directory_error(exc: DirectoryError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message, exc.details)


def _visible_contact(session: Session, contact_id: int, privileged: bool) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None or (contact.visibility != "public" and not privileged):
        raise ApiError(404, "not_found")
    return contact


@router.get(
    "/contacts/search", response_model=SearchResponse, summary="Search the directory (中文、拼音、首字母、电话尾号)"
)
def contacts_search(
    request: Request,
    viewer: ViewerDep,
    q: Annotated[str, Query(max_length=1000)] = "",
    department: Annotated[str | None, Query(max_length=500)] = None,
    region: Annotated[str | None, Query(max_length=50)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> SearchResponse:
    """Public callers see public contacts and office phones; staff and contacts:write keys see more."""
    try:
        result = search_directory(
            request.app.state.settings.data_dir,
            q,
            privileged=viewer.privileged,
            department=department,
            region=region,
            limit=limit,
            offset=offset,
        )
    except QueryError as exc:
        raise ApiError(422, exc.code, exc.message) from exc  # the query typed is the invalid input
    return SearchResponse(
        total=result.total,
        items=result.items,
        limit=limit,
        offset=offset,
        took_ms=result.took_ms,
        fallback=result.fallback,
    )


@router.get("/contacts", summary="List contacts (optionally of a department and its sub-departments)")
def contacts_list(
    session: SessionDep,
    viewer: ViewerDep,
    department_id: RowId | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """A page of contacts in id order."""
    tree = Tree.load(session)
    stmt = select(Contact)
    if department_id is not None:
        stmt = stmt.where(col(Contact.department_id).in_(tree.descendants(department_id)))
    if not viewer.privileged:
        stmt = stmt.where(Contact.visibility == "public")
    rows = session.exec(stmt.order_by(col(Contact.id)).offset(offset).limit(limit)).all()
    total = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    items = [_contact_out(tree.record(c).display(), viewer.privileged) for c in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/contacts/{contact_id:int}", summary="One contact")
def contacts_get(contact_id: RowId, session: SessionDep, viewer: ViewerDep) -> dict[str, Any]:
    """A contact; a staff-only contact is 404 to public callers."""
    contact = _visible_contact(session, contact_id, viewer.privileged)
    return _contact_out(Tree.load(session).record(contact).display(), viewer.privileged)


@router.post("/contacts", status_code=201, summary="Create a contact (contacts:write)")
def contacts_create(body: ContactCreate, request: Request, session: SessionDep, _w: WriterDep) -> dict[str, Any]:
    """Create and index a contact."""
    if not body.department and body.department_id is None:
        raise ApiError(422, "validation_error", "需要 department 或 department_id / department is required")
    try:
        contact = crud.create_contact(session, _index(request), body.model_dump())
    except DirectoryError as exc:
        raise _directory_error(exc) from exc
    return Tree.load(session).record(contact).display()


@router.patch("/contacts/{contact_id:int}", summary="Change a contact (contacts:write)")
def contacts_update(
    contact_id: RowId, body: ContactUpdate, request: Request, session: SessionDep, _w: WriterDep
) -> dict[str, Any]:
    """Change and re-index a contact."""
    contact = _visible_contact(session, contact_id, True)
    try:
        crud.update_contact(session, _index(request), contact, body.model_dump(exclude_unset=True))
    except DirectoryError as exc:
        raise _directory_error(exc) from exc
    return Tree.load(session).record(contact).display()


@router.delete("/contacts/{contact_id:int}", status_code=204, summary="Delete a contact (contacts:write)")
def contacts_delete(contact_id: RowId, request: Request, session: SessionDep, _w: WriterDep) -> Response:
    """Delete a contact and drop it from the index."""
    crud.delete_contact(session, _index(request), _visible_contact(session, contact_id, True))
    return Response(status_code=204)


def _department_out(dept: Department) -> DepartmentPublic:
    return DepartmentPublic(
        id=int(dept.id or 0),
        parent_id=dept.parent_id,
        name=dept.name,
        path=dept.path,
        aliases=list(dept.aliases or []),
        sort_order=dept.sort_order,
    )


@router.get("/departments", response_model=list[DepartmentPublic], summary="The department tree, in tree order")
def departments_list(session: SessionDep, _viewer: ViewerDep) -> list[DepartmentPublic]:
    """All departments, parents before children."""
    tree = Tree.load(session)
    order = tree.order()
    return [_department_out(d) for d in sorted(tree.departments.values(), key=lambda d: order.get(d.id or 0, 0))]


@router.get("/departments/{department_id}", response_model=DepartmentPublic, summary="One department")
def departments_get(department_id: RowId, session: SessionDep, _viewer: ViewerDep) -> DepartmentPublic:
    """A department."""
    dept = session.get(Department, department_id)
    if dept is None:
        raise ApiError(404, "not_found")
    return _department_out(dept)


@router.post("/departments", status_code=201, response_model=DepartmentPublic, summary="Create a department")
def departments_create(
    body: DepartmentCreate, request: Request, session: SessionDep, _w: WriterDep
) -> DepartmentPublic:
    """Create a department (contacts:write)."""
    try:
        dept = crud.create_department(
            session, _index(request), body.name, body.parent_id, body.aliases, body.sort_order, body.region
        )
    except DirectoryError as exc:
        raise _directory_error(exc) from exc
    return _department_out(dept)


@router.patch("/departments/{department_id}", response_model=DepartmentPublic, summary="Change a department")
def departments_update(
    department_id: RowId, body: DepartmentUpdate, request: Request, session: SessionDep, _w: WriterDep
) -> DepartmentPublic:
    """Rename, move, re-alias or re-order (contacts:write); contacts below are re-indexed."""
    dept = session.get(Department, department_id)
    if dept is None:
        raise ApiError(404, "not_found")
    try:
        crud.update_department(session, _index(request), dept, body.model_dump(exclude_unset=True))
    except DirectoryError as exc:
        raise _directory_error(exc) from exc
    return _department_out(dept)


@router.delete("/departments/{department_id}", status_code=204, summary="Delete an empty department")
def departments_delete(department_id: RowId, request: Request, session: SessionDep, _w: WriterDep) -> Response:
    """Delete a department without sub-departments or contacts (contacts:write)."""
    dept = session.get(Department, department_id)
    if dept is None:
        raise ApiError(404, "not_found")
    try:
        crud.delete_department(session, _index(request), dept)
    except DirectoryError as exc:
        raise _directory_error(exc) from exc
    return Response(status_code=204)
