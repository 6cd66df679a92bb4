"""LIKE patterns built from data match literally; renaming a department touches only its own subtree; a rename
onto a sibling's name is a 409 (both databases)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from contacts.like import like_escape, starts_with
from contacts.models import Department
from govconnect.app import create_app
from govconnect.settings import Settings
from tests.factories import make_agency, make_key


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine)) as c:
        yield c


@pytest.fixture
def writer(session: Session) -> dict[str, str]:
    key = make_key(session, make_agency(session), ["contacts:write"]).key
    return {"Authorization": f"Bearer {key}"}


def _create(client: TestClient, writer: dict[str, str], name: str, parent: int | None = None) -> int:
    r = client.post("/api/v1/departments", json={"name": name, "parent_id": parent}, headers=writer)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_like_escape() -> None:
    assert like_escape("ZQ_1%\\x") == "ZQ\\_1\\%\\\\x"


def test_starts_with_is_literal_on_both_databases(session: Session) -> None:
    for path in ("ZQ_1", "ZQ_1/a", "ZQa1", "ZQa1/b", "50%", "50%/c", "500/d", "a\\b/e", "aXb/f"):
        session.add(Department(name=path.rsplit("/", 1)[-1], path=path))
    session.commit()

    def under(prefix: str) -> list[str]:
        rows = session.exec(select(Department.path).where(starts_with(col(Department.path), prefix))).all()
        return sorted(rows)

    assert under("ZQ_1/") == ["ZQ_1/a"]
    assert under("50%/") == ["50%/c"]
    assert under("a\\b/") == ["a\\b/e"]


def test_renaming_zq_1_leaves_zqa1_alone(client: TestClient, writer: dict[str, str], session: Session) -> None:
    zq = _create(client, writer, "ZQ_1")
    _create(client, writer, "一科", zq)
    other = _create(client, writer, "ZQa1")
    _create(client, writer, "二科", other)
    r = client.patch(f"/api/v1/departments/{zq}", json={"name": "ZQ_2"}, headers=writer)
    assert r.status_code == 200, r.text
    paths = sorted(session.exec(select(Department.path)).all())
    assert paths == ["ZQ_2", "ZQ_2/一科", "ZQa1", "ZQa1/二科"]


def test_renaming_onto_a_siblings_name_is_a_conflict(client: TestClient, writer: dict[str, str]) -> None:
    top = _create(client, writer, "衢州市人民政府办公室")
    first = _create(client, writer, "秘书一处", top)
    _create(client, writer, "秘书二处", top)
    r = client.patch(f"/api/v1/departments/{first}", json={"name": "秘书二处"}, headers=writer)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "conflict"
    # Nothing changed, and the department can still be renamed properly afterwards.
    assert client.get(f"/api/v1/departments/{first}", headers=writer).json()["path"] == "衢州市人民政府办公室/秘书一处"
    ok = client.patch(f"/api/v1/departments/{first}", json={"name": "秘书三处"}, headers=writer)
    assert ok.status_code == 200 and ok.json()["path"] == "衢州市人民政府办公室/秘书三处"
    # Moving under a parent that already has a child of that name is the same conflict.
    elsewhere = _create(client, writer, "秘书二处")
    moved = client.patch(f"/api/v1/departments/{elsewhere}", json={"parent_id": top}, headers=writer)
    assert moved.status_code == 409, moved.text


def test_no_like_pattern_is_built_outside_the_helper() -> None:
    """SQL LIKE/ILIKE and column startswith/endswith/contains appear only in contacts/like.py."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    raw_like = re.compile(r"\.(i?like|notlike|notilike)\(|(col\([^()]*\)|\.c\.\w+)\.(startswith|endswith|contains)\(")
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for package in ("govconnect", "contacts", "search")
        for path in (root / package).rglob("*.py")
        if path.name != "like.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if raw_like.search(line)
    ]
    assert offenders == []
