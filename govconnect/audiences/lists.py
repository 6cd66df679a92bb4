"""Saved audience lists: an uploaded file streamed into a table, its report, and reading it back for fan-out.

The upload is read row by row and written in batches, so a million-row file never sits in
memory; duplicates merge into the first row through the (list, phone) unique key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, BinaryIO

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from govconnect.audiences.models import AudienceList, AudienceMember, AudienceRefusal
from govconnect.audiences.reader import FileRefused, read_table
from govconnect.audiences.rows import RowReport, check_row, read_header
from govconnect.clock import utcnow
from govconnect.errors import Invalid, NotFound
from govconnect.notices.audience import Recipient

log = logging.getLogger("govconnect.audiences")
L = AudienceList.__table__  # type: ignore[attr-defined]
M = AudienceMember.__table__  # type: ignore[attr-defined]
R = AudienceRefusal.__table__  # type: ignore[attr-defined]

BATCH = 2000
MAX_ROWS = 1_000_000
REPORT_LINES = 1000  # refused rows listed in the answer; all of them at …/refused


def import_audience_file(
    engine: Engine, agency_id: int, name: str, source: BinaryIO, filename: str, max_rows: int = MAX_ROWS
) -> tuple[AudienceList, RowReport]:
    """Stream a file into a new saved list; FileRefused (and no list) when the file cannot be used."""
    with engine.begin() as conn:
        list_id = int(
            conn.execute(
                L.insert()
                .values(
                    agency_id=agency_id,
                    name=name,
                    filename=filename[:255],
                    columns=[],
                    status="importing",
                    rows_read=0,
                    accepted=0,
                    refused=0,
                    duplicates=0,
                    created_at=utcnow(),
                )
                .returning(L.c.id)
            ).scalar_one()
        )
    try:
        report, columns = _stream_rows(engine, list_id, source, filename, max_rows)
    except BaseException:
        _drop(engine, list_id)
        raise
    with engine.begin() as conn:
        conn.execute(
            update(L)
            .where(L.c.id == list_id)
            .values(
                columns=columns,
                status="ready",
                rows_read=report.rows_read,
                accepted=report.accepted,
                refused=report.refused_total,
                duplicates=report.duplicates,
            )
        )
    with Session(engine, expire_on_commit=False) as session:
        saved = session.get(AudienceList, list_id)
    assert saved is not None
    log.info("audience list %s imported: %d accepted, %d refused", list_id, report.accepted, report.refused_total)
    return saved, report


def _stream_rows(
    engine: Engine, list_id: int, source: BinaryIO, filename: str, max_rows: int
) -> tuple[RowReport, list[str]]:
    rows = iter(read_table(source, filename))
    first = next(rows, None)
    if first is None:
        raise FileRefused("no_phone_column", "文件为空 / the file is empty")
    header = read_header(first[1])
    report = RowReport()
    members: list[dict[str, Any]] = []
    refusals: list[dict[str, Any]] = []
    for line, cells in rows:
        report.rows_read += 1
        if report.rows_read > max_rows:
            raise FileRefused("too_many_rows", f"超过 {max_rows} 行 / more than {max_rows} rows")
        checked = check_row(header, cells)
        if isinstance(checked, str):
            report.refuse(line, checked, keep=REPORT_LINES)
            refusals.append({"list_id": list_id, "line": line, "reason": checked})
        else:
            members.append({"list_id": list_id, "phone": checked[0], "params": checked[1]})
        if len(members) + len(refusals) >= BATCH:
            _write(engine, members, refusals, report)
            members, refusals = [], []
    _write(engine, members, refusals, report)
    return report, header.placeholders


def _write(engine: Engine, members: list[dict[str, Any]], refusals: list[dict[str, Any]], report: RowReport) -> None:
    """One batch: members (a number already in the list is merged: the first row wins) and refusals."""
    with engine.begin() as conn:
        if members:
            unique: dict[str, dict[str, Any]] = {}
            for member in members:
                unique.setdefault(member["phone"], member)
            insert = pg_insert(M) if conn.dialect.name == "postgresql" else sqlite_insert(M)
            stmt = insert.on_conflict_do_nothing(index_elements=["list_id", "phone"]).returning(M.c.id)
            inserted = len(conn.execute(stmt, list(unique.values())).all())
            report.accepted += inserted
            report.duplicates += len(members) - inserted
        if refusals:
            conn.execute(R.insert(), refusals)


def _drop(engine: Engine, list_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(delete(M).where(M.c.list_id == list_id))
        conn.execute(delete(R).where(R.c.list_id == list_id))
        conn.execute(delete(L).where(L.c.id == list_id))


def delete_list(engine: Engine, list_id: int) -> None:
    """Remove a saved list, its members and its refused rows (notices already sent keep their deliveries)."""
    _drop(engine, list_id)


def get_list(session: Session, agency_id: int, list_id: int) -> AudienceList:
    """The agency's ready list, or 404 (another agency's list is not found either)."""
    saved = session.get(AudienceList, list_id)
    if saved is None or saved.agency_id != agency_id or saved.status != "ready":
        raise NotFound()
    return saved


def saved_lists_of(session: Session, agency_id: int, list_ids: list[int]) -> list[AudienceList]:
    """The agency's lists named by a notice; 422 naming the ids that are not the agency's ready lists."""
    wanted = list(dict.fromkeys(list_ids))
    found = session.exec(  # type: ignore[call-overload]
        select(AudienceList).where(L.c.id.in_(wanted), L.c.agency_id == agency_id, L.c.status == "ready")
    ).scalars()
    lists = {saved.id: saved for saved in found}
    missing = [i for i in wanted if i not in lists]
    if missing:
        raise Invalid("unknown_audience_list", "受众名单不存在 / Unknown audience list", {"unknown": missing})
    return [lists[i] for i in wanted]


def agency_lists(session: Session, agency_id: int, limit: int, offset: int) -> tuple[list[AudienceList], int]:
    """The agency's ready lists, newest first, and their total."""
    where = (L.c.agency_id == agency_id, L.c.status == "ready")
    rows = session.exec(  # type: ignore[call-overload]
        select(AudienceList).where(*where).order_by(L.c.id.desc()).limit(limit).offset(offset)
    ).scalars()
    total = session.exec(select(func.count()).select_from(L).where(*where)).scalar_one()  # type: ignore[call-overload]
    return list(rows), int(total)


def refused_rows(conn: Connection, list_id: int, after_line: int, limit: int) -> list[tuple[int, str]]:
    """Refused rows of a list in file order, after a line (keyset pages for the full report)."""
    result = conn.execute(
        select(R.c.line, R.c.reason)
        .where(R.c.list_id == list_id, R.c.line > after_line)
        .order_by(R.c.line)
        .limit(limit)
    )
    rows: Any = result.all()
    return [(int(line), str(reason)) for line, reason in rows]


def list_pages(conn: Connection, list_ids: list[int], cursor: str, page: int) -> Iterator[tuple[list[Recipient], str]]:
    """Pages of the lists' members after `cursor` (`list id/member id`), the lists in the notice's order."""
    start_list, _, start_member = cursor.partition("/")
    started = not start_list
    for list_id in list_ids:
        if not started and str(list_id) != start_list:
            continue
        last = int(start_member or 0) if not started else 0
        started = True
        while True:
            rows: Any = conn.execute(
                select(M.c.id, M.c.phone, M.c.params)
                .where(M.c.list_id == list_id, M.c.id > last)
                .order_by(M.c.id)
                .limit(page)
            ).all()
            if not rows:
                break
            last = rows[-1][0]
            yield (
                [Recipient({"sms": phone, "voice": phone}, dict(params or {})) for _id, phone, params in rows],
                (f"{list_id}/{last}"),
            )
