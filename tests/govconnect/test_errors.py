"""One error tree, mapped once: JSON error shape for the API, the HTML error page for pages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from govconnect.app import create_app
from govconnect.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    InvalidTransition,
    NotFound,
    RateLimited,
    install_error_handlers,
)
from govconnect.settings import Settings

KINDS: dict[str, tuple[DomainError, int, str]] = {
    "invalid": (Invalid("bad_title", "标题无效 / bad title", {"field": "title"}), 422, "bad_title"),
    "not_found": (NotFound(), 404, "not_found"),
    "forbidden": (Forbidden(), 403, "forbidden"),
    "conflict": (Conflict("idempotency_conflict", "冲突 / clash"), 409, "idempotency_conflict"),
    "transition": (InvalidTransition(details={"from": "completed", "to": "cancelled"}), 409, "invalid_transition"),
    "limited": (RateLimited("code_too_soon", "请稍后 / later", retry_after=42), 429, "code_too_soon"),
}


def _raise(kind: str) -> None:
    raise KINDS[kind][0]


@pytest.fixture
def bare_client() -> Iterator[TestClient]:
    app = FastAPI()
    install_error_handlers(app)
    app.get("/api/v1/_raise/{kind}")(_raise)
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_answers_its_status_in_the_error_shape(bare_client: TestClient, kind: str) -> None:
    error, status, code = KINDS[kind]
    response = bare_client.get(f"/api/v1/_raise/{kind}")
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"error": {"code": code, "message": error.message, "details": error.details}}
    assert " / " in error.message  # Chinese first, English beside it (defaults included)


def test_rate_limited_says_when_to_retry(bare_client: TestClient) -> None:
    response = bare_client.get("/api/v1/_raise/limited")
    assert response.headers["retry-after"] == "42"
    assert response.json()["error"]["details"] == {"retry_after": 42}


def test_kinds_share_the_base_and_a_transition_is_a_conflict() -> None:
    assert all(isinstance(error, DomainError) for error, _, _ in KINDS.values())
    assert isinstance(KINDS["transition"][0], Conflict)


def test_pages_get_the_html_error_page_and_the_api_keeps_json(settings: Settings, engine: Engine) -> None:
    app = create_app(settings, engine=engine)
    app.get("/m/_raise/{kind}")(_raise)
    app.get("/api/v1/_raise/{kind}")(_raise)
    with TestClient(app) as client:
        page = client.get("/m/_raise/not_found")
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "页面不存在" in page.text and '{"error"' not in page.text
        limited = client.get("/m/_raise/limited")
        assert limited.status_code == 429 and limited.headers["retry-after"] == "42"
        assert "请稍后 / later" in limited.text
        api = client.get("/api/v1/_raise/not_found")
        assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
