"""Issue 11 medium 4: one normalised username, per-address limits, an account delay that never
locks the real user out, equal work for unknown users, server-side sign-out, nothing personal in
the cookie, and secrets compared as bytes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from govconnect import security
from govconnect.agencies.models import StaffUser
from govconnect.security import hash_password
from govconnect.web.login_throttle import normalise_username
from tests.govconnect.publishing.helpers import csrf_from

PASSWORD = "correct-horse-1"  # noqa: S105


def attempt(client: TestClient, username: str, password: str) -> Any:
    token = csrf_from(client.get("/m/login").text)
    return client.post(
        "/m/login", data={"username": username, "password": password, "csrf": token}, follow_redirects=False
    )


@pytest.fixture
def other_address(app: Any, client: TestClient) -> Iterator[TestClient]:
    """A second browser on another address, sharing the running app."""
    yield TestClient(app, base_url="http://testserver", client=("10.20.30.40", 40000))


def test_username_is_normalised_once() -> None:
    assert normalise_username("  WangLi\u00a0") == "wangli"
    assert normalise_username("\u3000ｗａｎｇｌｉ\u2003") == "wangli"
    assert normalise_username("WANGLI") == normalise_username("wangli")


def test_unicode_variants_share_the_real_names_budget(client: TestClient, operator: str) -> None:
    variants = ["wangli", "WANGLI", "wangli\u00a0", "\u3000ｗａｎｇｌｉ", "wangli\u2003"]
    assert [attempt(client, name, "guess").status_code for name in variants] == [401] * 5
    # The account is now slowed for this address, whatever spelling it uses next.
    for name in ["Wangli\u205f", "ＷＡＮＧＬＩ", "wangli"]:
        slowed = attempt(client, name, PASSWORD)
        assert slowed.status_code == 429 and 1 <= int(slowed.headers["retry-after"]) <= 60, name


def test_bad_tries_from_one_address_do_not_lock_out_another(
    client: TestClient, other_address: TestClient, operator: str
) -> None:
    statuses = [attempt(client, operator, f"guess-{i}").status_code for i in range(10)]
    assert statuses.count(401) == 5 and statuses.count(429) == 5
    ok = attempt(other_address, operator.upper(), PASSWORD)
    assert ok.status_code == 303 and ok.headers["location"] == "/m/staff/"
    assert other_address.get("/m/staff/", follow_redirects=False).status_code == 200


def test_unknown_and_disabled_users_cost_one_password_check(
    client: TestClient, session: Session, operator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = security._hasher

    class CountingHasher:
        def hash(self, password: str) -> str:
            return real.hash(password)

        def verify(self, stored: str, password: str) -> bool:
            calls.append(stored)
            return real.verify(stored, password)

    monkeypatch.setattr(security, "_hasher", CountingHasher())
    assert attempt(client, "nobody-here", PASSWORD).status_code == 401
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")
    user = session.exec(select(StaffUser).where(StaffUser.username == operator)).one()
    user.active = False
    session.add(user)
    session.commit()
    assert attempt(client, operator, PASSWORD).status_code == 401
    assert len(calls) == 2


def _cookie_payload(cookie: str) -> dict[str, Any]:
    data = cookie.split(".", 1)[0]
    return dict(json.loads(base64.b64decode(data + "=" * (-len(data) % 4))))


def test_cookie_carries_no_password_fragment(client: TestClient, session: Session, operator: str) -> None:
    assert attempt(client, operator, PASSWORD).status_code == 303
    payload = _cookie_payload(client.cookies["gc_session"])
    assert set(payload) == {"sid", "csrf"}
    user = session.exec(select(StaffUser).where(StaffUser.username == operator)).one()
    raw = json.dumps(payload)
    for start in range(0, len(user.password_hash) - 8):
        assert user.password_hash[start : start + 8] not in raw


def test_sign_out_ends_the_session_on_the_server(app: Any, client: TestClient, operator: str) -> None:
    assert attempt(client, operator, PASSWORD).status_code == 303
    captured = client.cookies["gc_session"]
    home = client.get("/m/")
    assert client.post("/m/logout", data={"csrf": csrf_from(home.text)}, follow_redirects=False).status_code == 303
    thief = TestClient(app, base_url="http://testserver", cookies={"gc_session": captured})
    response = thief.get("/m/staff/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/m/login")


def test_a_new_password_ends_every_session(client: TestClient, session: Session, operator: str) -> None:
    assert attempt(client, operator, PASSWORD).status_code == 303
    assert client.get("/m/staff/", follow_redirects=False).status_code == 200
    user = session.exec(select(StaffUser).where(StaffUser.username == operator)).one()
    user.password_hash = hash_password("another-horse-2")
    session.add(user)
    session.commit()
    assert client.get("/m/staff/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("value", ["令牌", "caf\u00e9", "\udcff"[:0] + "ключ"])
def test_non_ascii_secrets_are_refused_not_500(client: TestClient, operator: str, value: str) -> None:
    client.get("/m/login")
    bad_csrf = client.post("/m/login", data={"username": operator, "password": PASSWORD, "csrf": value})
    assert bad_csrf.status_code == 400
    token = client.post("/callbacks/aliyun_sms/report", params={"token": value}, json=[])
    assert token.status_code == 401 and token.json()["error"]["code"] == "unauthorized"
    wechat = client.get("/callbacks/wechat_mp", params={"signature": value, "timestamp": "1", "nonce": value})
    assert wechat.status_code == 401
