"""Subscribing again with a verified code lifts an earlier opt-out from the suppression list."""

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from govconnect.suppression import service
from tests.govconnect.publishing.conftest import SandboxHandle
from tests.govconnect.publishing.helpers import csrf_from


def test_verified_subscription_lifts_the_opt_out(
    client: TestClient, session: Session, settings: Any, sandbox: SandboxHandle
) -> None:
    secret = settings.secret_key.get_secret_value()
    service.suppress(session, secret, "13800001111", "sms-reply:cmpp")
    session.commit()
    sent = client.post(
        "/m/subscribe/code", data={"phone": "13800001111", "csrf": csrf_from(client.get("/m/subscribe").text)}
    )
    assert sent.status_code == 200
    wrong_code = "000000" if sandbox.last_code("13800001111") != "000000" else "111111"
    form = {"csrf": csrf_from(sent.text), "category": ["yjyj"], "channel": ["sms"]}
    assert client.post("/m/subscribe/confirm", data={**form, "code": wrong_code}).status_code == 400
    session.expire_all()
    assert service.is_suppressed(session, secret, "13800001111")  # no verified consent yet
    done = client.post("/m/subscribe/confirm", data={**form, "code": sandbox.last_code("13800001111")})
    assert done.status_code == 200 and "订阅成功" in done.text
    session.expire_all()
    assert not service.is_suppressed(session, secret, "13800001111")
