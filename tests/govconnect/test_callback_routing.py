"""Provider callbacks are answered before the session, staff and FastAPI layers, in the same error shape."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from govconnect.api.routes import receipts
from govconnect.app import create_app
from govconnect.providers.channel_factory import callback_token
from govconnect.settings import Settings
from tests.conftest import METRICS_AUTH


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    small = settings.model_copy(update={"max_body_bytes": 2048})
    with TestClient(create_app(small, engine=engine)) as c:
        yield c


def test_every_callback_route_is_marked_public() -> None:
    assert {r.path for r in receipts.ROUTES} >= {"/callbacks/aliyun_sms/report", "/callbacks/wechat_mp"}
    assert all(getattr(r.endpoint, "public", False) for r in receipts.ROUTES)


def test_callback_errors_keep_the_json_shape(client: TestClient, settings: Settings) -> None:
    token = callback_token(settings)
    missing = client.post(f"/callbacks/nowhere?token={token}", json=[])
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong_method = client.get(f"/callbacks/aliyun_sms/report?token={token}")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"
    too_big = client.post(f"/callbacks/aliyun_sms/report?token={token}", content=b"[" + b" " * 4096 + b"]")
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    unauthorized = client.post("/callbacks/aliyun_sms/report", json=[])
    assert unauthorized.status_code == 401 and unauthorized.json()["error"]["code"] == "unauthorized"


def test_callbacks_are_counted_by_route_template(client: TestClient, settings: Settings) -> None:
    token = callback_token(settings)
    ok = client.post(f"/callbacks/aliyun_sms/report?token={token}", json=[])
    assert ok.status_code == 200 and ok.json()["code"] == 0
    metrics = client.get("/metrics", headers=METRICS_AUTH).text
    assert 'route="/callbacks/aliyun_sms/report",status="200"' in metrics
