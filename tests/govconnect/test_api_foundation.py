"""The foundation API: authentication, scopes, the error shape, body limits, health."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import Depends
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session

from govconnect.agencies.service import revoke_api_key
from govconnect.api.deps import Principal, require_scope
from govconnect.app import create_app
from govconnect.settings import Settings
from tests.conftest import METRICS_AUTH
from tests.factories import make_agency, make_key


class Echo(BaseModel):
    title: str
    count: int


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"max_body_bytes": 2048}), engine=engine)

    # A route needing a scope and a JSON body, to exercise validation through the real stack.
    @app.post("/api/v1/_echo")
    def echo(body: Echo, _p: Principal = Depends(require_scope("notices:send"))) -> dict[str, object]:
        return body.model_dump()

    with TestClient(app) as c:
        yield c


def assert_error(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "details" in body["error"]
    return body


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"


def test_me_with_key(client: TestClient, session: Session) -> None:
    agency = make_agency(session, code="qz-yjj", name="衢州市应急管理局")
    issued = make_key(session, agency, ["notices:send", "notices:read"])
    r = client.get("/api/v1/agencies/me", headers={"Authorization": f"Bearer {issued.key}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == "qz-yjj"
    assert body["name"] == "衢州市应急管理局"
    assert body["scopes"] == ["notices:read", "notices:send"]
    assert body["key_prefix"] == issued.record.prefix
    assert issued.key not in r.text.replace(body["key_prefix"], "")


def test_missing_unknown_malformed_and_revoked_keys(client: TestClient, session: Session) -> None:
    assert_error(client.get("/api/v1/agencies/me"), 401, "unauthorized")
    assert_error(client.get("/api/v1/agencies/me", headers={"Authorization": "Basic abc"}), 401, "unauthorized")
    assert_error(
        client.get("/api/v1/agencies/me", headers={"Authorization": "Bearer gck_deadbeef_nope"}), 401, "unauthorized"
    )
    agency = make_agency(session)
    issued = make_key(session, agency)
    revoke_api_key(session, issued.record.prefix)
    session.commit()
    assert_error(
        client.get("/api/v1/agencies/me", headers={"Authorization": f"Bearer {issued.key}"}), 401, "key_revoked"
    )


def test_scope_and_body_errors(client: TestClient, session: Session) -> None:
    agency = make_agency(session)
    reader = make_key(session, agency, ["notices:read"]).key
    sender = make_key(session, agency, ["notices:send"]).key
    body = assert_error(
        client.post("/api/v1/_echo", json={"title": "x", "count": 1}, headers={"Authorization": f"Bearer {reader}"}),
        403,
        "forbidden",
    )
    assert body["error"]["details"] == {"required_scope": "notices:send"}
    auth = {"Authorization": f"Bearer {sender}"}
    ok = client.post("/api/v1/_echo", json={"title": "防汛", "count": 2}, headers=auth)
    assert ok.status_code == 200 and ok.json() == {"title": "防汛", "count": 2}
    assert_error(
        client.post("/api/v1/_echo", content=b'{"title": ', headers={**auth, "Content-Type": "application/json"}),
        400,
        "malformed_json",
    )
    invalid = assert_error(client.post("/api/v1/_echo", json={"title": "x"}, headers=auth), 422, "validation_error")
    assert invalid["error"]["details"][0]["loc"][-1] == "count"
    big = b'{"title": "' + b"x" * 5000 + b'", "count": 1}'
    too_big = assert_error(
        client.post("/api/v1/_echo", content=big, headers={**auth, "Content-Type": "application/json"}),
        413,
        "payload_too_large",
    )
    assert too_big["error"]["details"] == {"max_bytes": 2048}

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 500

    assert_error(
        client.post("/api/v1/_echo", content=chunks(), headers={**auth, "Content-Type": "application/json"}),
        413,
        "payload_too_large",
    )


def test_admin_scope_and_unknown_route(client: TestClient, session: Session) -> None:
    agency = make_agency(session)
    plain = make_key(session, agency, ["notices:send"]).key
    admin = make_key(session, agency, ["admin"]).key
    assert_error(client.get("/api/v1/agencies/me/keys", headers={"Authorization": f"Bearer {plain}"}), 403, "forbidden")
    keys = client.get("/api/v1/agencies/me/keys", headers={"Authorization": f"Bearer {admin}"}).json()
    assert len(keys) == 2
    assert all(set(k) >= {"prefix", "scopes"} and "key_hash" not in k for k in keys)
    assert_error(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_rate_limit_answers_429(settings: Settings, engine: Engine, session: Session) -> None:
    app = create_app(settings.model_copy(update={"api_rate_limit": "3/minute"}), engine=engine)
    agency = make_agency(session)
    key = make_key(session, agency).key
    with TestClient(app) as c:
        codes = [c.get("/api/v1/agencies/me", headers={"Authorization": f"Bearer {key}"}).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/api/v1/agencies/me", headers={"Authorization": f"Bearer {key}"})
        assert_error(r, 429, "rate_limited")
        assert int(r.headers["Retry-After"]) >= 1


def test_metrics_exposed(client: TestClient) -> None:
    client.get("/healthz")
    assert client.get("/metrics").status_code == 401  # not public
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    non_ascii = {"Authorization": "Bearer 令牌".encode()}  # raw UTF-8 bytes on the wire
    assert client.get("/metrics", headers=non_ascii).status_code == 401  # not a 500
    text = client.get("/metrics", headers=METRICS_AUTH).text
    assert 'govconnect_http_requests_total{method="GET",route="/healthz",status="200"}' in text


def test_readyz_reports_failing_redis(settings: Settings, engine: Engine) -> None:
    bad = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    app = create_app(bad, engine=engine)
    # Lifespan would fail to connect to Redis; readiness must still answer 503 without it.
    import redis.asyncio as aioredis

    from govconnect.api.routes import health  # noqa: F401

    app.router.lifespan_context = _no_lifespan  # type: ignore[assignment]
    app.state.engine = engine
    app.state.redis = aioredis.Redis.from_url(bad.redis_url, socket_connect_timeout=1)
    with TestClient(app) as c:
        r = c.get("/readyz")
        c.portal.call(app.state.redis.aclose)  # type: ignore[union-attr]
    assert r.status_code == 503
    assert r.json()["error"]["details"]["failing"] == ["redis"]


from contextlib import asynccontextmanager  # noqa: E402


@asynccontextmanager
async def _no_lifespan(_app):  # type: ignore[no-untyped-def]
    yield


def test_metrics_on_a_separate_listener() -> None:
    import socket

    import httpx

    from govconnect.cli.server import start_metrics_listener

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    start_metrics_listener(f"127.0.0.1:{port}")
    assert "govconnect_http_requests_total" in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
