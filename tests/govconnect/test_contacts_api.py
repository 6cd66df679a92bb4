"""The directory API on both databases: search shape and privacy, CRUD with scopes, bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from contacts.directory import directory_index
from contacts.importer import import_file
from govconnect.agencies.models import StaffUser
from govconnect.agencies.service import create_staff
from govconnect.app import create_app
from govconnect.settings import Settings
from tests.contacts.sample import ROWS, csv_text
from tests.factories import make_agency, make_key

PRIVATE_VALUES = ("13912346688", "661234", "zw@qz.example.cn", "13800005555", "667788")


@pytest.fixture
def client(settings: Settings, engine: Engine, session: Session, tmp_path: Path) -> Iterator[TestClient]:
    path = tmp_path / "sample.csv"
    path.write_text(csv_text(), encoding="utf-8")
    import_file(session, directory_index(settings.data_dir), path)
    app = create_app(settings, engine=engine)

    # Stands in for the mobile site's session middleware: it puts the signed-in staff user on request.state.
    @app.middleware("http")
    async def staff_from_header(request: Request, call_next):  # type: ignore[no-untyped-def]
        username = request.headers.get("x-test-staff")
        if username:
            with Session(engine) as s:
                from sqlmodel import select

                request.state.staff_user = s.exec(select(StaffUser).where(StaffUser.username == username)).one()
        return await call_next(request)

    with TestClient(app) as c:
        yield c


@pytest.fixture
def keys(session: Session) -> dict[str, str]:
    agency = make_agency(session)
    create_staff(session, "clerk", agency, "staff", "clerk-password-1", "值班员")
    session.commit()
    return {
        "writer": make_key(session, agency, ["contacts:write"]).key,
        "sender": make_key(session, agency, ["notices:send"]).key,
    }


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_search_shape_and_ranking(client: TestClient) -> None:
    r = client.get("/api/v1/contacts/search", params={"q": "张伟"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"total", "items", "limit", "offset", "took_ms", "fallback"} and body["fallback"] is None
    assert body["total"] == 3 and isinstance(body["took_ms"], float)
    assert [i["name"] for i in body["items"]] == ["张伟", "张伟明", "章薇"]  # exact, prefix, homophone
    first = body["items"][0]
    assert {"id", "name", "department", "department_path", "position", "office_phone", "region", "highlights"} <= set(
        first
    )
    assert (first["name"], first["department"], first["department_path"]) == (
        "张伟",
        "秘书一处",
        "衢州市人民政府办公室/秘书一处",
    )
    assert first["highlights"]["name"] == "<em>张伟</em>"
    page = client.get("/api/v1/contacts/search", params={"q": "局长", "limit": 1, "offset": 1}).json()
    assert page["total"] == 3 and [i["name"] for i in page["items"]] == ["曾小明"]


def test_public_callers_never_get_private_numbers(client: TestClient, keys: dict[str, str]) -> None:
    for q in ("张伟", "市府办", "6688", "667788", "13800005555", "办公室主任", "王芳", "zw"):
        for headers in ({}, auth(keys["sender"])):  # a key without contacts:write is a public viewer too
            text = client.get("/api/v1/contacts/search", params={"q": q}, headers=headers).text
            assert not any(v in text for v in PRIVATE_VALUES), (q, text)
            assert "王芳" not in text  # staff-only contact
    listed = client.get("/api/v1/contacts").text
    assert not any(v in listed for v in PRIVATE_VALUES) and "王芳" not in listed


@pytest.mark.parametrize("who", ["writer", "staff"])
def test_privileged_viewers_see_mobile_short_and_staff_contacts(
    client: TestClient, keys: dict[str, str], who: str
) -> None:
    headers = auth(keys["writer"]) if who == "writer" else {"x-test-staff": "clerk"}
    item = client.get("/api/v1/contacts/search", params={"q": "667788"}, headers=headers).json()["items"][0]
    assert (item["name"], item["short_number"], item["mobile"]) == ("李强", "667788", "13700005555")
    assert item["highlights"]["short_number"] == "<em>667788</em>"
    staff_only = client.get("/api/v1/contacts/search", params={"q": "王芳"}, headers=headers).json()
    assert staff_only["items"][0]["mobile"] == "13800005555"
    contact_id = staff_only["items"][0]["id"]
    assert client.get(f"/api/v1/contacts/{contact_id}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/contacts/{contact_id}").status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"q": ""},
        {"q": "张" * 500},
        {"q": "AND ("},
        {"q": "*"},
        {"q": "！！"},
        {"limit": "0", "q": "a"},
        {"q": "x", "offset": "-1"},
        {"q": "应机局" * 33},
        {"q": "\u202e经信局"},
    ],
)
@pytest.mark.parametrize("who", ["public", "staff"])
def test_bad_queries_are_4xx_or_empty(
    client: TestClient, keys: dict[str, str], params: dict[str, str], who: str
) -> None:
    headers = {"x-test-staff": "clerk"} if who == "staff" else {}
    r = client.get("/api/v1/contacts/search", params=params, headers=headers)
    assert r.status_code in (200, 400, 422), r.text
    if r.status_code == 200:
        assert r.json()["total"] == 0
    else:
        assert r.json()["error"]["code"] in ("query_empty", "query_too_long", "validation_error")


def test_a_fallback_answer_says_so(client: TestClient) -> None:
    body = client.get("/api/v1/contacts/search", params={"q": "赵敏 值班员"}).json()
    assert body["fallback"] == "fewer_terms" and [i["name"] for i in body["items"]] == ["赵敏"]
    body = client.get("/api/v1/contacts/search", params={"q": "应机指挥中心"}).json()
    assert body["fallback"] == "homophones" and [i["name"] for i in body["items"]] == ["张伟明"]


def test_department_filter(client: TestClient) -> None:
    body = client.get("/api/v1/contacts/search", params={"department": "江山市应急管理局"}).json()
    assert {i["name"] for i in body["items"]} == {"曾小明", "单丽", "李强"}


def test_contact_crud_needs_contacts_write(client: TestClient, keys: dict[str, str]) -> None:
    new = {"name": "周鹏", "department": "衢州市水利局/河湖管理科", "position": "科长", "office_phone": "0570-3088888"}
    assert client.post("/api/v1/contacts", json=new).status_code == 401
    assert client.post("/api/v1/contacts", json=new, headers=auth(keys["sender"])).status_code == 403
    r = client.post("/api/v1/contacts", json=new, headers=auth(keys["writer"]))
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert client.get("/api/v1/contacts/search", params={"q": "zp"}).json()["items"][0]["name"] == "周鹏"
    bad = client.post("/api/v1/contacts", json={**new, "mobile": "12345"}, headers=auth(keys["writer"]))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
    extra = client.post("/api/v1/contacts", json={**new, "secret": 1}, headers=auth(keys["writer"]))
    assert extra.status_code == 422
    patched = client.patch(f"/api/v1/contacts/{cid}", json={"position": "副科长"}, headers=auth(keys["writer"]))
    assert patched.status_code == 200 and patched.json()["position"] == "副科长"
    assert (
        client.patch(f"/api/v1/contacts/{cid}", json={"position": "x"}, headers=auth(keys["sender"])).status_code == 403
    )
    assert client.get("/api/v1/contacts/search", params={"q": "周鹏"}).json()["items"][0]["position"] == "副科长"
    assert client.delete(f"/api/v1/contacts/{cid}", headers=auth(keys["writer"])).status_code == 204
    assert client.get("/api/v1/contacts/search", params={"q": "周鹏"}).json()["total"] == 0
    assert client.delete(f"/api/v1/contacts/{cid}", headers=auth(keys["writer"])).status_code == 404


def test_department_crud(client: TestClient, keys: dict[str, str]) -> None:
    w = auth(keys["writer"])
    tree = client.get("/api/v1/departments").json()
    assert tree[0]["path"] == "衢州市人民政府办公室" and len(tree) == 8
    top = client.post("/api/v1/departments", json={"name": "衢州市统计局", "aliases": ["统计局"]}, headers=w)
    assert top.status_code == 201, top.text
    sub = client.post("/api/v1/departments", json={"name": "综合科", "parent_id": top.json()["id"]}, headers=w)
    assert sub.json()["path"] == "衢州市统计局/综合科"
    assert (
        client.post(
            "/api/v1/departments", json={"name": "综合科", "parent_id": top.json()["id"]}, headers=w
        ).status_code
        == 409
    )
    assert client.post("/api/v1/departments", json={"name": "x"}, headers=auth(keys["sender"])).status_code == 403
    client.post("/api/v1/contacts", json={"name": "孙丽", "department_id": sub.json()["id"]}, headers=w)
    assert client.get("/api/v1/contacts/search", params={"q": "统计局"}).json()["items"][0]["name"] == "孙丽"
    moved = client.patch(
        f"/api/v1/departments/{top.json()['id']}", json={"name": "衢州市统计局（普查中心）"}, headers=w
    )
    assert moved.status_code == 200
    item = client.get("/api/v1/contacts/search", params={"q": "孙丽"}).json()["items"][0]
    assert item["department_path"] == "衢州市统计局（普查中心）/综合科"
    assert (
        client.delete(f"/api/v1/departments/{top.json()['id']}", headers=w).json()["error"]["code"]
        == "department_not_empty"
    )
    cycle = client.patch(f"/api/v1/departments/{top.json()['id']}", json={"parent_id": sub.json()["id"]}, headers=w)
    assert cycle.status_code == 422
    assert client.get("/api/v1/departments/999999").status_code == 404
    assert len(ROWS) == 10


def test_contacts_take_a_dingtalk_userid(client: TestClient, keys: dict[str, str], session: Session) -> None:
    from contacts.models import Contact

    new = {"name": "周鹏", "department": "衢州市水利局/河湖管理科", "dingtalk_userid": "zhoupeng01"}
    r = client.post("/api/v1/contacts", json=new, headers=auth(keys["writer"]))
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert session.get(Contact, cid).dingtalk_userid == "zhoupeng01"  # type: ignore[union-attr]
    bad = client.patch(f"/api/v1/contacts/{cid}", json={"dingtalk_userid": "周 鹏"}, headers=auth(keys["writer"]))
    assert bad.status_code == 422 and "钉钉ID" in bad.json()["error"]["message"]
