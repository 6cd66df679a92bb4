"""Per-address limits on anonymous endpoints (issue 11, low): 429 with Retry-After, shared through Redis."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.app import create_app
from govconnect.settings import Settings
from tests.factories import make_key
from tests.govconnect.publishing.helpers import csrf_from


def test_anonymous_pages_are_limited_per_address(
    settings: Settings, engine: Engine, session: Session, agency: Agency, operator: str
) -> None:
    app: Any = create_app(settings.model_copy(update={"anonymous_rate_limit": "4/minute"}), engine=engine)
    key = make_key(session, agency, ["notices:read"]).key
    with TestClient(app) as citizen:
        statuses = [citizen.get(path).status_code for path in ("/m/", "/tv/", "/feeds/tv.json", "/m/search?q=a")]
        assert statuses == [200, 200, 200, 200]
        limited = citizen.get("/api/v1/contacts/search", params={"q": "张"})
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert citizen.get("/healthz").status_code == 200  # not an anonymous page
        # A key's own limit applies to it, not the address's.
        keyed = citizen.get("/api/v1/contacts/search", params={"q": "张"}, headers={"Authorization": f"Bearer {key}"})
        assert keyed.status_code == 200
        neighbour = TestClient(app, client=("198.51.100.20", 5000))
        assert neighbour.get("/m/").status_code == 200
    with TestClient(app, client=("198.51.100.30", 5000)) as staff:
        token = csrf_from(staff.get("/m/login").text)
        staff.post("/m/login", data={"username": operator, "password": "correct-horse-1", "csrf": token})
        assert [staff.get("/m/staff/").status_code for _ in range(6)] == [200] * 6  # signed in: not counted


def test_the_count_is_shared_through_redis(settings: Settings, engine: Engine, redis_url: str, queue_name: str) -> None:
    shared = settings.model_copy(
        update={"anonymous_rate_limit": "3/minute", "redis_url": redis_url, "queue_name": queue_name}
    )
    with TestClient(create_app(shared, engine=engine)) as one, TestClient(create_app(shared, engine=engine)) as two:
        assert [one.get("/m/").status_code, two.get("/m/").status_code, one.get("/m/").status_code] == [200] * 3
        assert two.get("/m/").status_code == 429
