"""One paging style (`limit`/`offset`) on every list, and unknown query parameters refused with 422."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from govconnect.agencies.models import SCOPES
from govconnect.app import create_app
from govconnect.settings import Settings
from tests.factories import make_agency, make_categories, make_key, make_subscriber
from tests.routes import api_routes


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine)) as c:
        yield c


@pytest.fixture
def admin(session: Session) -> dict[str, str]:
    make_categories(session)
    issued = make_key(session, make_agency(session, code="qz-page"), list(SCOPES))
    return {"Authorization": f"Bearer {issued.key}"}


def _error(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


def _get_api_paths(client: TestClient) -> list[str]:
    paths = []
    for path, route in api_routes(client.app):
        if path.startswith("/api/") and "GET" in route.methods:
            # Any value passes the check that runs first; "1" is a valid id of every kind.
            paths.append(re.sub(r"\{[^}]+\}", "1", path))
    return sorted(set(paths))


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_every_get_api_route_refuses_an_unknown_query_parameter(client: TestClient, admin: dict[str, str]) -> None:
    paths = _get_api_paths(client)
    assert len(paths) > 20, paths  # the walk really found the API
    for path in paths:
        for headers in (admin, {}):
            error = _error(client.get(path, params={"page_sise": "3"}, headers=headers), 422, "unknown_parameter")
            assert error["details"]["unknown"] == ["page_sise"], path
            assert "page_sise" in error["message"]


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_every_list_pages_with_limit_and_offset(client: TestClient) -> None:
    """In the published description: `offset` comes with `limit`; `page`/`page_size` survive only as deprecated."""
    spec = client.get("/openapi.json").json()
    paged = []
    for path, item in spec["paths"].items():
        get = item.get("get")
        if not path.startswith("/api/") or get is None:
            continue
        params = {p["name"]: p for p in get.get("parameters", []) if p["in"] == "query"}
        for old in ("page", "page_size", "per_page", "size", "skip"):
            if old in params:
                assert params[old].get("deprecated") is True, (path, old)
        if "offset" in params:
            assert "limit" in params, path
            paged.append(path)
            schema = get["responses"]["200"]["content"]["application/json"].get("schema", {})
            ref = schema.get("$ref", "").rsplit("/", 1)[-1]
            if ref:
                fields = set(spec["components"]["schemas"][ref]["properties"])
                assert {"items", "total", "limit", "offset"} <= fields, (path, fields)
    assert {"/api/v1/notices", "/api/v1/subscribers", "/api/v1/audit", "/api/v1/contacts"} <= set(paged)


def test_notices_page_with_limit_offset_and_the_old_names(
    client: TestClient, session: Session, admin: dict[str, str]
) -> None:
    ids = []
    for n in range(3):
        body = {"title": f"通知{n}", "body": "今日测试。", "category": "zwgk", "channels": ["site"]}
        r = client.post("/api/v1/notices", json=body, headers=admin)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    newest_first = ids[::-1]

    page = client.get("/api/v1/notices", params={"limit": 1, "offset": 1}, headers=admin).json()
    assert [n["id"] for n in page["items"]] == newest_first[1:2]
    assert (page["total"], page["limit"], page["offset"]) == (3, 1, 1)
    assert "page" not in page and "page_size" not in page

    old = client.get("/api/v1/notices", params={"page": 2, "page_size": 1}, headers=admin).json()
    assert [n["id"] for n in old["items"]] == newest_first[1:2]
    assert (old["limit"], old["offset"]) == (1, 1)
    assert len(client.get("/api/v1/notices", params={"page_size": 2}, headers=admin).json()["items"]) == 2

    mixed = client.get("/api/v1/notices", params={"page": 3, "page_size": 2, "limit": 1}, headers=admin).json()
    assert (mixed["limit"], mixed["offset"]) == (1, 2)  # the new name wins; the old offset follows it
    _error(client.get("/api/v1/notices", params={"limit": 0}, headers=admin), 422, "validation_error")
    _error(client.get("/api/v1/notices", params={"limit": 201}, headers=admin), 422, "validation_error")


def test_subscribers_page_size_is_refused_not_ignored(
    client: TestClient, session: Session, admin: dict[str, str]
) -> None:
    for i in range(4):
        make_subscriber(session, f"1380000000{i}")
    # The example: `?page_size=3` answered 100 items without a word.
    error = _error(client.get("/api/v1/subscribers?page_size=3", headers=admin), 422, "unknown_parameter")
    assert {"limit", "offset"} <= set(error["details"]["accepted"])
    page = client.get("/api/v1/subscribers?limit=3&offset=2", headers=admin).json()
    assert (len(page["items"]), page["total"], page["limit"], page["offset"]) == (2, 4, 3, 2)
