"""/openapi.json declares the Bearer key, the error shape, file media types and 405's Allow; 405 names every method."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from govconnect.app import create_app
from govconnect.settings import Settings

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
JSON_ERROR = {"$ref": "#/components/schemas/Error"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    data = tmp_path_factory.mktemp("openapi")
    return create_app(
        Settings(
            database_url=f"sqlite:///{data / 'gc.db'}",
            data_dir=data,
            secret_key="test-secret-key-0123456789",  # noqa: S106
            test_mode=True,
            redis_url="",
            anonymous_rate_limit="100000/minute",
        )
    )


@pytest.fixture(scope="module")
def spec(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    # No lifespan: routing and 405 need no database.
    yield TestClient(app)


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method.upper() in METHODS:
                yield path, method.upper(), operation


def resolve(spec: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    ref = response.get("$ref")
    if ref is None:
        return response
    found: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        found = found[part]
    return dict(found)


def test_405_names_every_method_of_the_path_in_the_error_shape(client: TestClient) -> None:
    # Starlette named only the first matching route's methods: `DELETE /api/v1/notices` said `Allow: POST`.
    response = client.delete("/api/v1/notices")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert " / " in response.json()["error"]["message"]
    assert client.put("/api/v1/contacts/7").headers["allow"] == "GET, PATCH, DELETE"


def test_every_path_answers_an_undeclared_method_with_405_and_exactly_its_methods(
    client: TestClient, spec: dict[str, Any]
) -> None:
    wrong = []
    for path, item in spec["paths"].items():
        declared = {method.upper() for method in item} & set(METHODS)
        concrete = re.sub(r"{[^}]+}", "1", path)
        method = next(m for m in ("PUT", "PATCH", "DELETE", "POST", "GET") if m not in declared)
        response = client.request(method, concrete)
        allowed = {m.strip() for m in response.headers.get("allow", "").split(",")} - {"HEAD", ""}
        if response.status_code != 405 or allowed != declared:
            wrong.append((method, concrete, response.status_code, response.headers.get("allow"), sorted(declared)))
    assert wrong == []


def test_the_bearer_scheme_is_declared_on_every_route_that_reads_a_key(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["type"] == "http" and schemes["bearerAuth"]["scheme"] == "bearer"
    for path, method, operation in operations(spec):
        if path.startswith("/api/v1/"):
            assert {"bearerAuth": []} in operation.get("security", []), (method, path)
            assert {"401", "429", "503"} <= set(operation["responses"]), (method, path)
        if operation.get("security") == [{"bearerAuth": []}]:  # a key is required, not optional
            assert "401" in operation["responses"]
    assert spec["paths"]["/api/v1/notices"]["post"]["security"] == [{"bearerAuth": []}]
    # The directory answers the public too; a key only shows more.
    assert spec["paths"]["/api/v1/contacts/search"]["get"]["security"] == [{}, {"bearerAuth": []}]
    assert "403" in spec["paths"]["/api/v1/notices"]["post"]["responses"]  # notices:send is demanded
    assert "403" not in spec["paths"]["/api/v1/agencies/me"]["get"]["responses"]  # any valid key
    assert spec["paths"]["/metrics"]["get"]["security"] == [{"metricsToken": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_every_error_answer_is_declared_in_the_one_error_shape(spec: dict[str, Any]) -> None:
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error"] and error["properties"]["error"]["required"] == ["code", "message"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # FastAPI's 422 shape: never sent
    for path, method, operation in operations(spec):
        responses = operation["responses"]
        assert "405" in responses, (method, path)
        for status, response in responses.items():
            if status[0] in "45":
                body = resolve(spec, response)
                assert body["content"] == {"application/json": {"schema": JSON_ERROR}}, (method, path, status)
        assert resolve(spec, responses["405"])["headers"]["Allow"]["required"] is True
        for status in ("429", "503"):
            if status in responses and path != "/readyz":  # not ready is no overload: no Retry-After
                assert "Retry-After" in resolve(spec, responses[status])["headers"], (method, path)
        if any(p["in"] == "path" for p in operation.get("parameters", [])):
            assert "404" in responses, (method, path)
        if "requestBody" in operation:
            assert {"400", "413", "422"} <= set(responses), (method, path)
        if path.startswith("/api/v1/") and method != "GET":
            assert "409" in responses, (method, path)
        if path.startswith("/api/v1/"):  # unknown query names are refused on every API route
            assert "422" in responses, (method, path)


@pytest.mark.parametrize(
    ("path", "media_types"),
    [
        ("/api/v1/notices/{notice_id}/deliveries", {"application/json", "text/csv"}),
        ("/api/v1/audit", {"application/json", "text/csv"}),
        (
            "/api/v1/reports/agencies",
            {"application/json", "text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
        ),
        ("/api/v1/subscribers/export.csv", {"text/csv"}),
        ("/api/v1/reports/agencies/{code}/scorecard.svg", {"image/svg+xml"}),
        ("/metrics", {"text/plain"}),
        ("/status", {"application/json", "text/html"}),
    ],
)
def test_file_answers_declare_their_media_types(spec: dict[str, Any], path: str, media_types: set[str]) -> None:
    assert set(spec["paths"][path]["get"]["responses"]["200"]["content"]) == media_types


def test_every_route_that_sends_a_file_declares_it(spec: dict[str, Any]) -> None:
    # A route whose code names a file media type must say so in the spec (a new export cannot forget).
    root = Path(__file__).resolve().parents[2] / "govconnect"
    sent = set()
    for source in root.rglob("*.py"):
        if source.relative_to(root).parts[0] in ("web", "console"):
            continue  # pages: not in the API schema
        text = source.read_text(encoding="utf-8")
        sent |= set(re.findall(r'media_type="(text/csv|application/vnd\.openxml[^";]+|image/svg\+xml)', text))
    declared = {media for _p, _m, op in operations(spec) for media in op["responses"].get("200", {}).get("content", {})}
    assert sent and sent <= declared
