"""Create, change and delete departments and contacts; every change reaches the search index."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from contacts.index_sync import record_changes
from contacts.like import starts_with
from contacts.models import Contact, Department
from contacts.phones import normalise_mobile
from contacts.service import (
    DirectoryError,
    Tree,
    check_fields,
    clean_phone,
    ensure_department,
    find_department,
    get_or_create_region,
    reindex,
    split_path,
    sync_departments,
    touch,
)
from search.index import DirectoryIndex

CONTACT_FIELDS = (
    "name",
    "position",
    "office_phone",
    "mobile",
    "short_number",
    "email",
    "visibility",
    "sort_order",
    "dingtalk_userid",
)


def _resolve_department(session: Session, values: dict[str, Any], region_name: str) -> Department:
    if values.get("department_id") is not None:
        dept = session.get(Department, int(values["department_id"]))
        if dept is None:
            raise DirectoryError(422, "unknown_department", "部门不存在 / unknown department")
        return dept
    return ensure_department(session, str(values.get("department") or ""), get_or_create_region(session, region_name))


def _apply(session: Session, contact: Contact, values: dict[str, Any]) -> None:
    for name in CONTACT_FIELDS:
        if name in values and values[name] is not None:
            value = values[name]
            if name == "office_phone":
                value = clean_phone(value)
            elif name == "mobile":
                value = normalise_mobile(value) or ""  # checked before: only an empty value has no number
            setattr(contact, name, value.strip() if isinstance(value, str) else value)
    if "region" in values and values["region"] is not None:
        region = get_or_create_region(session, values["region"])
        contact.region_id = region.id if region else None
    if "external_id" in values:
        contact.external_id = (values["external_id"] or "").strip() or None
    touch(contact)


def _check(values: dict[str, Any]) -> None:
    problems = check_fields(values)
    if problems:
        raise DirectoryError(422, "validation_error", "; ".join(problems), details=problems)


def create_contact(session: Session, ix: DirectoryIndex | None, values: dict[str, Any]) -> Contact:
    """Create a contact (its department path is created when missing) and index it."""
    _check(values)
    _unique_external_id(session, values.get("external_id"), None)
    dept = _resolve_department(session, values, values.get("region") or "")
    contact = Contact(name="", department_id=int(dept.id or 0))
    _apply(session, contact, values)
    session.add(contact)
    session.flush()
    record_changes(session, [int(contact.id or 0)], departments=True)  # its department may be new
    session.commit()
    reindex(session, ix, [int(contact.id or 0)])
    return contact


def _unique_external_id(session: Session, external_id: str | None, own_id: int | None) -> None:
    if not external_id:
        return
    other = session.exec(select(Contact).where(Contact.external_id == external_id.strip())).first()
    if other is not None and other.id != own_id:
        raise DirectoryError(409, "conflict", "编号已存在 / external_id already used")


def update_contact(session: Session, ix: DirectoryIndex | None, contact: Contact, values: dict[str, Any]) -> Contact:
    """Change some fields of a contact and re-index it."""
    merged = {name: getattr(contact, name) for name in CONTACT_FIELDS} | {"department_id": contact.department_id}
    merged.update({k: v for k, v in values.items() if v is not None})
    if values.get("department") and values.get("department_id") is None:
        merged.pop("department_id")
    _check(merged)
    _unique_external_id(session, values.get("external_id"), contact.id)
    if values.get("department") is not None or values.get("department_id") is not None:
        contact.department_id = int(_resolve_department(session, merged, values.get("region") or "").id or 0)
    _apply(session, contact, values)
    session.add(contact)
    record_changes(session, [int(contact.id or 0)], departments=True)
    session.commit()
    reindex(session, ix, [int(contact.id or 0)])
    return contact


def delete_contact(session: Session, ix: DirectoryIndex | None, contact: Contact) -> None:
    """Delete a contact and drop it from the index."""
    cid = int(contact.id or 0)
    session.delete(contact)
    record_changes(session, [cid])
    session.commit()
    reindex(session, ix, [cid])


def create_department(
    session: Session,
    ix: DirectoryIndex | None,
    name: str,
    parent_id: int | None = None,
    aliases: list[str] | None = None,
    sort_order: int | None = None,
    region: str | None = None,
) -> Department:
    """Create a department under a parent (or at the top)."""
    name = name.strip()
    if not name or "/" in name:
        raise DirectoryError(422, "validation_error", "部门名称无效 / invalid department name")
    parent = session.get(Department, parent_id) if parent_id is not None else None
    if parent_id is not None and parent is None:
        raise DirectoryError(422, "unknown_department", "上级部门不存在 / unknown parent department")
    path = f"{parent.path}/{name}" if parent else name
    if session.exec(select(Department).where(Department.path == path)).first() is not None:
        raise DirectoryError(409, "conflict", "部门已存在 / department already exists")
    dept = ensure_department(session, path, get_or_create_region(session, region or ""))
    dept.aliases = _clean_aliases(aliases)
    if sort_order is not None:
        dept.sort_order = sort_order
    session.add(dept)
    record_changes(session, departments=True)
    session.commit()
    sync_departments(session, ix)
    return dept


def _clean_aliases(aliases: list[str] | None) -> list[str]:
    return list(dict.fromkeys(a.strip() for a in (aliases or []) if a and a.strip()))


def update_department(
    session: Session, ix: DirectoryIndex | None, dept: Department, values: dict[str, Any]
) -> Department:
    """Rename, move, re-alias or re-order a department; its subtree's paths and index entries follow."""
    # Nothing reaches the database before the checks below (an early flush would hit the unique constraints).
    try:
        with session.no_autoflush:
            _change_department(session, dept, values)
    except DirectoryError:
        session.rollback()  # the object was changed in memory only: forget it
        raise
    try:
        session.flush()
        subtree = Tree.load(session).descendants(int(dept.id or 0))
        found = session.exec(select(Contact.id).where(col(Contact.department_id).in_(subtree))).all()
        ids = [int(i) for i in found if i is not None]
        record_changes(session, ids, departments=True)  # other nodes re-read the subtree's people
        session.commit()
    except IntegrityError as exc:  # a concurrent change took the name first
        session.rollback()
        raise DirectoryError(409, "conflict", "部门已存在 / department already exists") from exc
    sync_departments(session, ix)
    reindex(session, ix, ids)
    return dept


def _change_department(session: Session, dept: Department, values: dict[str, Any]) -> None:
    tree = Tree.load(session)
    if values.get("parent_id") is not None and int(values["parent_id"]) in tree.descendants(int(dept.id or 0)):
        raise DirectoryError(422, "validation_error", "不能移动到自身或下级部门下 / cannot move under itself")
    if "name" in values and values["name"] is not None:
        name = values["name"].strip()
        if not name or "/" in name:
            raise DirectoryError(422, "validation_error", "部门名称无效 / invalid department name")
        dept.name = name
    if "parent_id" in values:
        if values["parent_id"] is not None and session.get(Department, int(values["parent_id"])) is None:
            raise DirectoryError(422, "unknown_department", "上级部门不存在 / unknown parent department")
        dept.parent_id = values["parent_id"]
    if values.get("aliases") is not None:
        dept.aliases = _clean_aliases(values["aliases"])
    if values.get("sort_order") is not None:
        dept.sort_order = int(values["sort_order"])
    parent = session.get(Department, dept.parent_id) if dept.parent_id else None
    new_path = f"{parent.path}/{dept.name}" if parent else dept.name
    clash = session.exec(select(Department).where(Department.path == new_path, Department.id != dept.id)).first()
    if clash is not None:
        raise DirectoryError(409, "conflict", "部门已存在 / department already exists")
    old_path = dept.path
    dept.path = new_path
    session.add(dept)
    if old_path != new_path:
        for child in session.exec(select(Department).where(starts_with(col(Department.path), old_path + "/"))).all():
            child.path = new_path + child.path[len(old_path) :]
            session.add(child)


def delete_department(session: Session, ix: DirectoryIndex | None, dept: Department) -> None:
    """Delete an empty department (no sub-departments, no contacts)."""
    has_child = session.exec(select(Department).where(Department.parent_id == dept.id)).first() is not None
    has_contact = session.exec(select(Contact).where(Contact.department_id == dept.id)).first() is not None
    if has_child or has_contact:
        raise DirectoryError(409, "department_not_empty", "部门下仍有下级部门或联系人 / department is not empty")
    session.delete(dept)
    record_changes(session, departments=True)
    session.commit()
    sync_departments(session, ix)


__all__ = ["split_path", "find_department"]
