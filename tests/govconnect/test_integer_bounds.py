"""Integers from a request are bounded: huge ids and offsets are a 422, never a 500 (on both databases)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import TypeAdapter
from sqlalchemy.engine import Engine
from sqlmodel import Session

from govconnect.app import create_app
from govconnect.settings import Settings
from tests.factories import make_agency, make_categories, make_key

HUGE = "99999999999999999999"


def unbounded_integers(schema: Any, defs: dict[str, Any], where: str, seen: set[str]) -> Iterator[str]:
    """Paths inside a JSON schema where an integer has no maximum (or no minimum)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                yield from unbounded_integers(defs[name], defs, f"{where}->{name}", seen)
            return
        if schema.get("type") == "integer" and ("maximum" not in schema or "minimum" not in schema):
            yield where
        for key, value in schema.items():
            if key != "$defs":
                yield from unbounded_integers(value, defs, f"{where}.{key}", seen)
    elif isinstance(schema, list):
        for number, value in enumerate(schema):
            yield from unbounded_integers(value, defs, f"{where}[{number}]", seen)


def request_fields(dependant: Dependant) -> Iterator[Any]:
    """Every parameter and body field a route reads, its dependencies' included."""
    yield from dependant.path_params
    yield from dependant.query_params
    yield from dependant.header_params
    yield from dependant.cookie_params
    yield from dependant.body_params
    for sub in dependant.dependencies:
        yield from request_fields(sub)


def test_no_route_takes_an_unbounded_integer(settings: Settings, engine: Engine) -> None:
    app = create_app(settings, engine=engine)
    problems: list[str] = []
    checked = 0
    for context in iter_route_contexts(app.routes):  # included routers are not APIRoutes themselves
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        checked += 1
        for field in request_fields(route.dependant):
            info = field.field_info
            annotation: Any = info.annotation
            if info.metadata:
                annotation = Annotated[(annotation, *info.metadata)]  # type: ignore[valid-type]
            schema = TypeAdapter(annotation).json_schema(ref_template="#/$defs/{model}")
            where = f"{sorted(route.methods)} {context.path} {field.name}"
            problems.extend(unbounded_integers(schema, schema.get("$defs", {}), where, set()))
    assert checked > 20 and problems == []


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as test_client:
        yield test_client


def test_huge_integers_are_422_anonymous_and_with_a_key(client: TestClient, session: Session) -> None:
    make_categories(session)
    key = make_key(session, make_agency(session, code="qz-int"), ["admin"]).key
    auth = {"Authorization": f"Bearer {key}"}
    paths = [
        "/api/v1/contacts?offset=9223372036854775808",
        f"/api/v1/contacts/{HUGE}",
        "/api/v1/contacts/3000000000",  # beyond PostgreSQL's integer
        f"/api/v1/contacts?department_id={HUGE}",
        f"/api/v1/departments/{HUGE}",
        "/api/v1/subscribers?offset=9223372036854775808",
    ]
    for headers in ({}, auth):
        for path in paths:
            if "subscribers" in path and not headers:
                continue
            answer = client.get(path, headers=headers)
            assert answer.status_code == 422, (path, answer.text)
            assert answer.json()["error"]["code"] == "validation_error"
    bodies = [
        ("post", "/api/v1/contacts", {"name": "甲", "department_id": int(HUGE)}),
        ("post", "/api/v1/contacts", {"name": "甲", "department_id": 3_000_000_000}),
        ("patch", "/api/v1/contacts/1", {"department_id": int(HUGE)}),
        ("post", "/api/v1/departments", {"name": "甲", "parent_id": int(HUGE)}),
        ("patch", "/api/v1/departments/1", {"parent_id": 3_000_000_000}),
        (
            "post",
            "/api/v1/notices",
            {"title": "t", "body": "b", "channels": ["sms"], "audience": {"staff": {"ids": [int(HUGE)]}}},
        ),
        (
            "post",
            "/api/v1/notices",
            {"title": "t", "body": "b", "channels": ["sms"], "audience": {"staff": {"departments": [3_000_000_000]}}},
        ),
    ]
    for method, path, body in bodies:
        answer = client.request(method, path, json=body, headers=auth)
        assert answer.status_code == 422, (path, body, answer.text)
        assert answer.json()["error"]["code"] == "validation_error"
    far = client.get("/api/v1/contacts?offset=2147483647", headers=auth).json()
    assert far["items"] == [] and far["offset"] == 2147483647
