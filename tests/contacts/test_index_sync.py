"""The change log and the index follower, in one process with two data dirs (both databases)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from contacts import crud, index_sync
from contacts.directory import directory_index, search_directory
from contacts.importer import import_file
from contacts.index_sync import IndexFollower, latest_change_id
from contacts.models import Contact, DirectoryChange
from tests.contacts.sample import ROWS, csv_text


def _names(data_dir: Path, q: str) -> list[str]:
    return [i["name"] for i in search_directory(data_dir, q, privileged=True).items]


def test_every_write_is_logged_in_its_own_transaction(session: Session, tmp_path: Path) -> None:
    ix = directory_index(tmp_path / "a")
    source = tmp_path / "s.csv"
    source.write_text(csv_text(), encoding="utf-8")
    import_file(session, ix, source)
    logged = session.exec(select(DirectoryChange.contact_id).where(DirectoryChange.kind == "contact")).all()
    assert sorted(logged) == sorted(session.exec(select(Contact.id)).all())
    contact = crud.create_contact(session, ix, {"name": "钱多多", "department": "衢州市财政局", "region": "市级"})
    crud.update_contact(session, ix, contact, {"position": "科长"})
    crud.delete_contact(session, ix, contact)
    tail = session.exec(select(DirectoryChange).order_by(col(DirectoryChange.id).desc()).limit(5)).all()
    assert [(c.kind, c.contact_id) for c in reversed(tail)] == [
        ("contact", contact.id),
        ("departments", None),
        ("contact", contact.id),
        ("departments", None),
        ("contact", contact.id),
    ]


def test_a_second_index_follows_and_a_fresh_one_rebuilds(session: Session, engine: Engine, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    ix_a = directory_index(a)
    source = tmp_path / "s.csv"
    source.write_text(csv_text(), encoding="utf-8")
    import_file(session, ix_a, source)
    follower = IndexFollower(engine, directory_index(b))
    assert follower.catch_up() == 0  # fresh folder: rebuilt from the database
    assert directory_index(b).doc_count() == len(ROWS)
    assert directory_index(b).applied_change() == latest_change_id(session)

    contact = crud.create_contact(session, ix_a, {"name": "钱多多", "department": "衢州市财政局", "region": "市级"})
    assert _names(b, "qdd") == []
    assert follower.catch_up() == 2  # the contact and its (maybe new) department
    assert _names(b, "qdd") == ["钱多多"]
    dept = crud.find_department(session, "衢州市财政局")
    assert dept is not None
    crud.update_department(session, ix_a, dept, {"aliases": ["钱袋子局"]})
    crud.delete_contact(session, ix_a, session.exec(select(Contact).where(Contact.name == "李强")).one())
    follower.catch_up()
    assert _names(b, "钱袋子局") == ["钱多多"] and _names(b, "李强") == []
    assert follower.catch_up() == 0  # nothing new
    crud.delete_contact(session, ix_a, contact)


def test_gaps_wait_for_late_commits_then_move_on(
    session: Session, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ix_b = directory_index(tmp_path / "b")
    follower = IndexFollower(engine, ix_b)
    follower.catch_up()
    start = ix_b.applied_change() or 0
    # Change start+2 commits while start+1 is still open elsewhere (on PostgreSQL a sequence allows it).
    session.add(DirectoryChange(id=start + 2, kind="departments"))
    session.commit()
    follower.catch_up()
    assert ix_b.applied_change() == start  # waits for start+1
    session.add(DirectoryChange(id=start + 1, kind="departments"))
    session.commit()
    follower.catch_up()
    assert ix_b.applied_change() == start + 2
    session.add(DirectoryChange(id=start + 4, kind="departments"))  # start+3 never commits
    session.commit()
    follower.catch_up()
    assert ix_b.applied_change() == start + 2
    monkeypatch.setattr(index_sync, "GAP_WAIT_S", 0.0)
    follower.catch_up()
    assert ix_b.applied_change() == start + 4


def test_a_cursor_beyond_the_log_rebuilds(session: Session, engine: Engine, tmp_path: Path) -> None:
    ix = directory_index(tmp_path / "b")
    crud.create_contact(session, None, {"name": "钱多多", "department": "衢州市财政局", "region": "市级"})
    ix.set_applied_change(10**9)  # e.g. the database was restored from an older backup
    IndexFollower(engine, ix).catch_up()
    assert ix.applied_change() == latest_change_id(session)
    assert _names(tmp_path / "b", "钱多多") == ["钱多多"]
