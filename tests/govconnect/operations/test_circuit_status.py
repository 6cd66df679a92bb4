"""Circuits against the sandbox's fault injection, and /status as operators see it.

aliyun_sms answers 503 until the fault is cleared: its circuit opens, new SMS go straight to
CMPP, the status page shows it; after the cool-down one probe message goes to aliyun_sms, gets
accepted, and the circuit closes by itself.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from govconnect.agencies.models import Agency
from govconnect.notices.pipeline_models import Delivery
from govconnect.settings import Settings
from tests.factories import make_key, make_subscriber
from tests.govconnect.notices.test_end_to_end import Gateway, gateway  # noqa: F401


@pytest.fixture
def pipeline_settings(settings: Settings) -> Settings:
    """Quick retries, a circuit that opens after 2 failing calls and probes after 6 s."""
    notices = settings.notices.model_copy(update={"retry_base_seconds": 0.05, "retry_max_seconds": 0.2})
    monitoring = settings.monitoring.model_copy(update={"circuit_failures": 2, "circuit_cooldown_seconds": 6.0})
    return settings.model_copy(update={"notices": notices, "monitoring": monitoring})


def send(client: httpx.Client, auth: dict[str, str]) -> str:
    body = {
        "title": "停电通知",
        "body": "今晚检修停电。",
        "category": "yjyj",
        "urgency": "urgent",
        "channels": ["sms"],
        "audience": {"subscribers": {"categories": ["yjyj"]}},
    }
    response = client.post("/api/v1/notices", json=body, headers=auth)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def providers_used(engine: Engine, notice_id: str, timeout: float = 20) -> list[tuple[str, int]]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with Session(engine) as s:
            rows = s.exec(select(Delivery).where(Delivery.notice_id == notice_id)).all()
        if rows and all(d.status in ("sent", "delivered") for d in rows):
            return sorted((d.provider, d.attempts) for d in rows)
        time.sleep(0.1)
    raise AssertionError(f"deliveries not sent: {[(d.provider, d.status, d.attempts, d.error_code) for d in rows]}")


def status(client: httpx.Client, admin: dict[str, str]) -> dict[str, Any]:
    response = client.get("/status?format=json", headers=admin)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_circuit_opens_fails_over_shows_and_closes_after_a_probe(
    gateway: Gateway,  # noqa: F811
    engine: Engine,
    session: Session,
    agency: Agency,
    auth: dict[str, str],
) -> None:
    for i in range(3):
        make_subscriber(session, f"1330000001{i}", None, channels=["sms"])  # not ...0000: those fail
    admin = {"Authorization": f"Bearer {make_key(session, agency, ['admin']).key}"}
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        # Reading /status takes an admin key or an operator session.
        assert client.get("/status?format=json", headers=auth).status_code == 403
        assert client.get("/status", follow_redirects=False).status_code in (302, 303, 307)
        assert status(client, admin)["providers"]["aliyun_sms"]["circuit"] == "closed"

        faults = client.post(
            f"{gateway.sandbox}/_sandbox/faults", json={"provider": "aliyun_sms", "kind": "http_5xx", "status": 503}
        )
        assert faults.status_code in (200, 201), faults.text
        first = send(client, auth)
        assert {p for p, _ in providers_used(engine, first)} == {"cmpp"}  # after failing on aliyun_sms
        state = status(client, admin)
        assert state["providers"]["aliyun_sms"]["circuit"] == "open"
        assert state["providers"]["aliyun_sms"]["5m"]["success_rate"] == 0.0
        assert "circuit_open:aliyun_sms" in state["warnings"]
        page = client.get("/status", headers=admin)
        assert page.status_code == 200 and "<script" not in page.text
        assert "熔断 open" in page.text

        # While open, new SMS go straight to CMPP: first attempt, no request to aliyun_sms.
        before = client.get(f"{gateway.sandbox}/_sandbox/counts").json()["requests"].get("aliyun_sms", 0)
        second = send(client, auth)
        assert providers_used(engine, second) == [("cmpp", 1)] * 3
        after = client.get(f"{gateway.sandbox}/_sandbox/counts").json()["requests"].get("aliyun_sms", 0)
        assert after == before

        # The provider recovers; after the cool-down one probe goes to it and closes the circuit.
        client.delete(f"{gateway.sandbox}/_sandbox/faults", params={"provider": "aliyun_sms"})
        time.sleep(max(0.0, status(client, admin)["providers"]["aliyun_sms"]["circuit_retry_in_seconds"]) + 0.3)
        third = send(client, auth)
        used = providers_used(engine, third)
        assert ("aliyun_sms", 1) in used  # the probe
        assert status(client, admin)["providers"]["aliyun_sms"]["circuit"] == "closed"
        fourth = send(client, auth)
        assert providers_used(engine, fourth) == [("aliyun_sms", 1)] * 3
