"""Listing subscribers costs a constant number of SQL statements per page, whatever the page or table size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from govconnect.app import create_app
from govconnect.settings import Settings
from tests.factories import make_agency, make_categories, make_key, make_subscriber


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine)) as test_client:
        yield test_client


def statements_for(client: TestClient, engine: Engine, url: str, auth: dict[str, str]) -> tuple[int, Any]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The embedded worker's sweeper shares the engine: count what reads subscriber tables.
        if "subscriber" in statement.lower():
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        answer = client.get(url, headers=auth)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert answer.status_code == 200, answer.text
    return len(seen), answer.json()


def test_a_page_of_subscribers_costs_the_same_statements_at_any_size(
    client: TestClient, session: Session, engine: Engine
) -> None:
    make_categories(session)
    key = make_key(session, make_agency(session, code="qz-subs"), ["subscribers:read"]).key
    auth = {"Authorization": f"Bearer {key}"}
    for n in range(60):
        make_subscriber(session, f"1380000{n:04d}", None, categories=["yjyj", "sbyl"], regions=["江山市", "柯城区"])
    statements_for(client, engine, "/api/v1/subscribers?limit=1", auth)  # key's last-use stamp written once
    one, _ = statements_for(client, engine, "/api/v1/subscribers?limit=1", auth)
    fifty, page = statements_for(client, engine, "/api/v1/subscribers?limit=50&offset=5", auth)
    assert len(page["items"]) == 50 and page["total"] == 60
    assert page["items"][0]["phone"] == "138****0005"
    assert page["items"][0]["categories"] == ["sbyl", "yjyj"] and page["items"][0]["regions"] == ["柯城区", "江山市"]
    for n in range(60, 200):
        make_subscriber(session, f"1380000{n:04d}", None, categories=["yjyj"])
    bigger, _ = statements_for(client, engine, "/api/v1/subscribers?limit=50&offset=100", auth)
    assert one == fifty == bigger
    assert fifty == 5  # subscribers, their categories, their regions, two counts
