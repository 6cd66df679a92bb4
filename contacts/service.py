"""Directory operations: regions, the department tree, contacts, and keeping the search index in step."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, func, select

from contacts.index_sync import latest_change_id
from contacts.models import VISIBILITIES, Contact, Department, Region
from contacts.phones import normalise_mobile
from search.index import DirectoryIndex
from search.records import DepartmentInfo, DirectoryRecord

LANDLINE_RE = re.compile(r"^0\d{2,3}-\d{7,8}(-\d{1,6})?$|^\d{7,8}$")
SHORT_RE = re.compile(r"^\d{3,8}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# DingTalk user ids: set by the organisation or generated (letters, digits, a few marks), at most 64.
DINGTALK_USERID_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
CITY_REGION = "市级"
PARALLEL_REBUILD_FROM = 20_000  # contacts; below this a second process costs more than it saves


class DirectoryError(Exception):
    """A directory rule was broken; `status` is the HTTP status a route should answer."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def clean_phone(value: str | None) -> str:
    """Trim and normalise separators: full-width, spaces and dots become '-' (0570 1234567 → 0570-1234567)."""
    text = (value or "").strip().replace("－", "-").replace("—", "-").replace(" ", "-").replace(".", "-")
    return re.sub(r"-+", "-", text).strip("-")


def check_fields(values: dict[str, Any]) -> list[str]:
    """Reasons the values are invalid (empty when valid); Chinese / English."""
    problems = []
    if not (values.get("name") or "").strip():
        problems.append("缺少姓名 / name is missing")
    if not (values.get("department") or values.get("department_id")):
        problems.append("缺少部门 / department is missing")
    mobile = (values.get("mobile") or "").strip()
    if mobile and normalise_mobile(mobile) is None:
        problems.append("手机号码无效 / invalid mobile number (expected 1[3-9] + 9 digits)")
    office = clean_phone(values.get("office_phone"))
    if office and not LANDLINE_RE.match(office):
        problems.append("办公电话无效 / invalid office phone (expected e.g. 0570-1234567)")
    short = (values.get("short_number") or "").strip()
    if short and not SHORT_RE.match(short):
        problems.append("短号无效 / invalid short number (3-8 digits)")
    email = (values.get("email") or "").strip()
    if email and not EMAIL_RE.match(email):
        problems.append("邮箱无效 / invalid email")
    dingtalk = (values.get("dingtalk_userid") or "").strip()
    if dingtalk and not DINGTALK_USERID_RE.match(dingtalk):
        problems.append("钉钉ID无效 / invalid DingTalk user id (letters, digits, _ . @ -; at most 64)")
    visibility = (values.get("visibility") or "public").strip()
    if visibility not in VISIBILITIES:
        problems.append("公开范围无效 / visibility must be public or staff")
    return problems


# --- regions and departments ---


def get_or_create_region(session: Session, name: str) -> Region | None:
    """The region by name, created when new; None for an empty name."""
    name = (name or "").strip()
    if not name:
        return None
    region = session.exec(select(Region).where(Region.name == name)).first()
    if region is None:
        region = Region(name=name)
        session.add(region)
        session.flush()
    return region


def split_path(path: str) -> list[str]:
    """`衢州市人民政府办公室 / 秘书一处` → ['衢州市人民政府办公室', '秘书一处']."""
    return [part.strip() for part in (path or "").replace("／", "/").split("/") if part.strip()]


def ensure_department(session: Session, path: str, region: Region | None = None) -> Department:
    """The department at `path`, creating any missing level."""
    parts = split_path(path)
    if not parts:
        raise DirectoryError(422, "validation_error", "部门路径为空 / empty department path")
    parent: Department | None = None
    for depth in range(len(parts)):
        full = "/".join(parts[: depth + 1])
        found = session.exec(select(Department).where(Department.path == full)).first()
        if found is None:
            found = Department(
                name=parts[depth],
                path=full,
                parent_id=parent.id if parent else None,
                region_id=region.id if region else None,
                sort_order=_next_sort(session, parent.id if parent else None),
            )
            session.add(found)
            session.flush()
        parent = found
    assert parent is not None
    return parent


def _next_sort(session: Session, parent_id: int | None) -> int:
    current = session.exec(select(func.max(Department.sort_order)).where(Department.parent_id == parent_id)).one()
    return int(current or 0) + 1


def find_department(session: Session, key: str | int) -> Department | None:
    """A department by id, full path, name or alias (first by tree order)."""
    if isinstance(key, int) or str(key).isdigit():
        return session.get(Department, int(key))
    text = "/".join(split_path(str(key)))
    found = session.exec(select(Department).where(Department.path == text)).first()
    if found is not None:
        return found
    for dept in session.exec(select(Department).order_by(col(Department.id))).all():
        if dept.name == text or text in (dept.aliases or []):
            return dept
    return None


@dataclass
class Tree:
    """All departments and regions in memory (a city has hundreds, not millions)."""

    departments: dict[int, Department]
    regions: dict[int, Region]

    @classmethod
    def load(cls, session: Session) -> Tree:
        """Read the whole tree."""
        departments = {d.id: d for d in session.exec(select(Department)).all() if d.id is not None}
        regions = {r.id: r for r in session.exec(select(Region)).all() if r.id is not None}
        return cls(departments, regions)

    def ancestors(self, dept_id: int) -> list[Department]:
        """The department and its ancestors, root first."""
        chain: list[Department] = []
        seen: set[int] = set()
        current = self.departments.get(dept_id)
        while current is not None and current.id not in seen:
            seen.add(current.id)  # type: ignore[arg-type]
            chain.append(current)
            current = self.departments.get(current.parent_id) if current.parent_id else None
        return list(reversed(chain))

    def descendants(self, dept_id: int) -> set[int]:
        """Ids of the department and everything under it."""
        children: dict[int | None, list[int]] = {}
        for d in self.departments.values():
            children.setdefault(d.parent_id, []).append(d.id)  # type: ignore[arg-type]
        out, stack = set(), [dept_id]
        while stack:
            current = stack.pop()
            if current not in out:
                out.add(current)
                stack.extend(children.get(current, []))
        return out

    def order(self) -> dict[int, int]:
        """Department id → rank in tree order (siblings by sort_order, then id)."""
        children: dict[int | None, list[Department]] = {}
        for d in self.departments.values():
            children.setdefault(d.parent_id, []).append(d)
        ranks: dict[int, int] = {}
        stack = sorted(children.get(None, []), key=lambda d: (d.sort_order, d.id), reverse=True)
        while stack:
            dept = stack.pop()
            ranks[dept.id] = len(ranks)  # type: ignore[index]
            stack.extend(sorted(children.get(dept.id, []), key=lambda d: (d.sort_order, d.id), reverse=True))
        return ranks

    def infos(self) -> list[DepartmentInfo]:
        """The department table the search index keeps beside it."""
        order = self.order()
        out = []
        for d in self.departments.values():
            region = self.regions.get(d.region_id) if d.region_id else None
            out.append(
                DepartmentInfo(
                    id=int(d.id or 0),
                    name=d.name,
                    path=d.path,
                    parent_id=d.parent_id,
                    aliases=list(d.aliases or []),
                    region=region.name if region else "",
                    rank=order.get(int(d.id or 0), 0),
                )
            )
        return out

    def record(self, contact: Contact) -> DirectoryRecord:
        """The index record for a contact."""
        chain = self.ancestors(contact.department_id)
        dept = chain[-1] if chain else None
        region = self.regions.get(contact.region_id) if contact.region_id else None
        if region is None and dept is not None:
            region = next((self.regions.get(d.region_id) for d in reversed(chain) if d.region_id), None)
        return DirectoryRecord(
            id=int(contact.id or 0),
            name=contact.name,
            department=dept.name if dept else "",
            department_path=dept.path if dept else "",
            department_id=contact.department_id,
            position=contact.position,
            office_phone=contact.office_phone,
            mobile=contact.mobile,
            short_number=contact.short_number,
            email=contact.email,
            region=region.name if region else "",
            visibility=contact.visibility,
            sort_order=contact.sort_order,
        )


# --- index sync ---


def reindex(session: Session, ix: DirectoryIndex | None, contact_ids: Iterable[int]) -> None:
    """Bring the index in line with the database for these contacts (upsert or delete)."""
    if ix is None:
        return
    ids = sorted(set(contact_ids))
    if not ids:
        return
    tree = Tree.load(session)
    ix.set_departments(tree.infos())
    found: dict[int, Contact] = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        for c in session.exec(select(Contact).where(col(Contact.id).in_(chunk))).all():
            found[int(c.id or 0)] = c
    ix.upsert(tree.record(c) for c in found.values())
    ix.delete(i for i in ids if i not in found)


def iter_contacts(session: Session, batch: int = 2000) -> Iterator[Contact]:
    """All contacts by id, in batches (keeps memory flat on large directories)."""
    last = 0
    while True:
        rows = session.exec(select(Contact).where(col(Contact.id) > last).order_by(col(Contact.id)).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = int(rows[-1].id or 0)


def rebuild_index(session: Session, ix: DirectoryIndex) -> int:
    """Rebuild the whole index from the database; returns the number of contacts indexed.

    The index then reflects the change log up to the last change committed before it read the
    contacts (later changes are applied again by the node's follower: applying is idempotent)."""
    applied = latest_change_id(session)
    tree = Tree.load(session)
    ix.set_departments(tree.infos())
    count = session.exec(select(func.count()).select_from(Contact)).one()
    procs = 2 if count >= PARALLEL_REBUILD_FROM else 1
    indexed = ix.rebuild((tree.record(c) for c in iter_contacts(session)), procs=procs)
    ix.set_applied_change(applied)
    return indexed


def sync_departments(session: Session, ix: DirectoryIndex | None) -> None:
    """Give the index the current department table (names, aliases, tree order)."""
    if ix is not None:
        ix.set_departments(Tree.load(session).infos())


def touch(contact: Contact) -> None:
    """Mark a contact as changed now."""
    contact.updated_at = datetime.now(UTC)
