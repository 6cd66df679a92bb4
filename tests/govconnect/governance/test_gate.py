"""The notice transition table and its one gate: every allowed pair works, every other pair is refused."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.audit.models import AuditEntry
from govconnect.audit.record import Actor
from govconnect.notices.gate import InvalidTransition, change_status, is_allowed
from govconnect.notices.models import NOTICE_STATUSES, NOTICE_TRANSITIONS, Notice
from tests.govconnect.governance.conftest import notice_in

ACTOR = Actor("key:gc_test", None, "127.0.0.1")


def test_the_table_names_only_known_statuses() -> None:
    assert set(NOTICE_TRANSITIONS) == set(NOTICE_STATUSES)
    for source, targets in NOTICE_TRANSITIONS.items():
        assert targets <= set(NOTICE_STATUSES), source
        assert source not in targets, f"{source} -> itself is not a change"


def _audit_rows(session: Session, notice_id: str) -> list[AuditEntry]:
    session.expire_all()
    return list(session.exec(select(AuditEntry).where(AuditEntry.target_id == notice_id)).scalars())  # type: ignore[call-overload]


@pytest.mark.parametrize("source", NOTICE_STATUSES)
def test_every_pair_from_the_table(session: Session, agency: Agency, source: str) -> None:
    """Generated from the table: allowed targets change status and audit; forbidden ones change nothing."""
    for target in NOTICE_STATUSES:
        notice = notice_in(session, agency, source)
        if is_allowed(source, target):
            assert change_status(session, notice.id, target, ACTOR) == source
            session.commit()
            session.refresh(notice)
            assert notice.status == target
            assert notice.status_changed_by == "key:gc_test" and notice.status_changed_at is not None
            [row] = _audit_rows(session, notice.id)
            assert row.changes == {"from": source, "to": target}
            assert row.agency_id == agency.id and row.client_address == "127.0.0.1"
        else:
            with pytest.raises(InvalidTransition) as caught:
                change_status(session, notice.id, target, ACTOR)
            session.rollback()
            assert caught.value.status == 409 and caught.value.code == "invalid_transition"
            session.refresh(notice)
            assert notice.status == source, f"{source} -> {target} must be refused"
            assert _audit_rows(session, notice.id) == []


def test_only_from_skips_quietly(session: Session, agency: Agency) -> None:
    notice = notice_in(session, agency, "cancelled")
    assert change_status(session, notice.id, "sending", ACTOR, only_from=("accepted",)) is None
    session.commit()
    session.refresh(notice)
    assert notice.status == "cancelled"


def test_audit_row_rolls_back_with_the_change(session: Session, agency: Agency) -> None:
    notice = notice_in(session, agency, "sending")
    change_status(session, notice.id, "cancelled", ACTOR)
    session.rollback()
    session.refresh(notice)
    assert notice.status == "sending"
    assert _audit_rows(session, notice.id) == []


def test_guarded_update_loses_to_a_change_committed_in_between(
    engine: Engine, session: Session, agency: Agency
) -> None:
    """The sweeper completes the notice between the gate's read and its write: cancel must not overwrite it."""
    notice = notice_in(session, agency, "sending")
    N = Notice.__table__  # type: ignore[attr-defined]
    fired: list[bool] = []

    def complete_first(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE NOTICE") and not fired:
            fired.append(True)
            with engine.begin() as other:
                other.execute(update(N).where(N.c.id == notice.id).values(status="completed"))

    with engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", complete_first)
        with pytest.raises(InvalidTransition) as caught:
            with conn.begin():
                change_status(conn, notice.id, "cancelled", ACTOR)
    assert fired and caught.value.current == "completed"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM notice WHERE id = :id"), {"id": notice.id}).scalar() == "completed"
