"""Import and export of the directory: CSV (UTF-8 with or without BOM, GB18030) and XLSX."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session

from contacts.crud import _apply
from contacts.index_sync import record_changes
from contacts.models import Contact, Department, Region
from contacts.service import (
    DirectoryError,
    Tree,
    check_fields,
    ensure_department,
    get_or_create_region,
    iter_contacts,
    rebuild_index,
    reindex,
    split_path,
)
from contacts.tabular import TabularError, iter_records
from search.index import DirectoryIndex

FIELDS = (
    "name",
    "department",
    "position",
    "office_phone",
    "mobile",
    "short_number",
    "email",
    "region",
    "visibility",
    "external_id",
    "dingtalk_userid",
)
CHINESE = ("姓名", "部门", "职务", "办公电话", "手机", "短号", "邮箱", "地区", "公开范围", "编号", "钉钉ID")
HEADER_MAP = dict(zip(FIELDS, FIELDS, strict=True)) | dict(zip(CHINESE, FIELDS, strict=True))
VISIBILITY_WORDS = {
    "": "public",
    "public": "public",
    "公开": "public",
    "staff": "staff",
    "内部": "staff",
    "仅内部": "staff",
}
COMMIT_EVERY = 1000
REBUILD_FROM = 2000  # changed contacts from which an import rebuilds the index instead of updating it


# The file as a whole cannot be read (encoding, format, headers, limits): one error type for every importer.
ImportFileError = TabularError


@dataclass
class ImportReport:
    """What an import did: counts and each bad row with its line number and reason."""

    created: int = 0
    updated: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Rows read."""
        return self.created + self.updated + len(self.failed)


def read_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """(field names found, stream of (line number, values)) from a CSV or XLSX file, within the table limits."""
    fields, rows = iter_records(path, HEADER_MAP)
    if "name" not in fields or "department" not in fields:
        raise ImportFileError(
            "header_invalid",
            "表头需包含 姓名、部门（或 name、department）/ the header must name at least name and department",
        )
    return fields, rows


def count_rows(path: Path) -> int:
    """Rows of data in the file, reading it once through every limit (so a bad file fails before any change)."""
    _fields, rows = read_rows(path)
    return sum(1 for _ in rows)


@dataclass
class _Known:
    """What the import looks rows up in, loaded once (a query per row would dominate large imports)."""

    by_external: dict[str, Contact]
    by_name: dict[tuple[str, int], Contact]
    departments: dict[str, Department]
    regions: dict[str, Region | None]


def import_file(
    session: Session,
    ix: DirectoryIndex | None,
    path: Path,
    progress: Callable[[int], None] | None = None,
    checked: bool = False,
) -> ImportReport:
    """Import contacts; bad rows are reported and skipped, good rows are created or updated.

    The file is read through once before anything changes (unless the caller did, `checked`),
    so a file breaking a limit changes nothing.
    """
    if not checked:
        count_rows(path)
    _fields, rows = read_rows(path)
    report = ImportReport()
    existing = list(iter_contacts(session))
    known = _Known(
        by_external={c.external_id: c for c in existing if c.external_id},
        by_name={(c.name, c.department_id): c for c in existing},
        departments={},
        regions={},
    )
    touched: list[Contact] = []
    unrecorded = 0  # touched[unrecorded:] still need their change rows

    def commit() -> None:
        nonlocal unrecorded
        session.flush()
        record_changes(session, (int(c.id or 0) for c in touched[unrecorded:]), departments=True)
        unrecorded = len(touched)
        session.commit()  # the contacts and their change rows land together

    for done, (line, values) in enumerate(rows, start=1):
        visibility = VISIBILITY_WORDS.get(values.get("visibility", "").lower())
        problems = check_fields({**values, "visibility": visibility or "public"})
        if visibility is None:
            problems.append("公开范围无效 / visibility must be public/公开 or staff/内部")
        if problems:
            report.failed.append((line, "; ".join(problems)))
        else:
            values["visibility"] = visibility or "public"
            try:
                with session.no_autoflush:
                    contact, created = _upsert_row(session, values, known)
            except DirectoryError as exc:
                report.failed.append((line, exc.message))
            else:
                touched.append(contact)
                report.created += created
                report.updated += not created
        if done % COMMIT_EVERY == 0:
            commit()
        if progress is not None:
            progress(1)
    commit()
    ids = {int(c.id or 0) for c in touched}
    if ix is not None and len(ids) >= REBUILD_FROM and len(ids) * 2 >= len(existing):
        rebuild_index(session, ix)  # most of the directory changed: one fresh build beats updates
    else:
        reindex(session, ix, ids)
    return report


def _region(session: Session, known: _Known, name: str) -> Region | None:
    if name not in known.regions:
        known.regions[name] = get_or_create_region(session, name)
    return known.regions[name]


def _upsert_row(session: Session, values: dict[str, str], known: _Known) -> tuple[Contact, bool]:
    path = "/".join(split_path(values["department"]))
    region = _region(session, known, values.get("region", ""))
    dept = known.departments.get(path)
    if dept is None:
        dept = known.departments[path] = ensure_department(session, path, region)
    dept_id = int(dept.id or 0)
    external = values.get("external_id") or None
    contact = known.by_external.get(external) if external else None
    if contact is None:
        found = known.by_name.get((values["name"], dept_id))
        # Name + department identifies a row without an id, or a known person getting an id for the first time.
        if found is not None and (not external or not found.external_id):
            contact = found
    created = contact is None
    if contact is None:
        contact = Contact(name=values["name"], department_id=dept_id)
        session.add(contact)
    known.by_name.pop((contact.name, contact.department_id), None)
    contact.department_id = dept_id
    fields = {k: v for k, v in values.items() if k not in ("region", "external_id")}
    if external:  # a row without an id never clears the id a contact already has
        fields["external_id"] = external
    _apply(session, contact, fields)
    contact.region_id = region.id if region else None
    known.by_name[(contact.name, dept_id)] = contact
    if external:
        known.by_external[external] = contact
    return contact, created


def export_rows(session: Session, chinese: bool = False) -> Iterator[list[str]]:
    """The header row, then one row per contact (tree order is left to the reader; ordered by id)."""
    yield list(CHINESE if chinese else FIELDS)
    tree = Tree.load(session)
    for contact in iter_contacts(session):
        dept = tree.departments.get(contact.department_id)
        region = tree.regions.get(contact.region_id) if contact.region_id else None
        yield [
            contact.name,
            dept.path if dept else "",
            contact.position,
            contact.office_phone,
            contact.mobile,
            contact.short_number,
            contact.email,
            region.name if region else "",
            contact.visibility,
            contact.external_id or "",
            contact.dingtalk_userid,
        ]
