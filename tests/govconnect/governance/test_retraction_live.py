"""End to end over loopback: a retracted notice leaves /m/, the three feeds, /tv/ and the sandbox's Weibo
timeline within 5 seconds (real pipeline, real HTTP, the provider sandbox mounted in the server)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import feedparser
import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from govconnect.agencies.service import create_agency
from govconnect.settings import Settings
from tests.factories import make_key
from tests.govconnect.publishing.live import LiveServer

TITLE = "衢江区自来水管爆裂抢修通知"


@pytest.fixture
def live(settings: Settings, engine: Engine) -> Iterator[LiveServer]:
    with LiveServer(settings, engine, report_delay=0.05) as server:
        yield server


def wait_until(check: Callable[[], bool], timeout: float) -> float:
    """Seconds it took for `check` to hold; fails after `timeout`."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(0.1)
    return time.monotonic() - start


def _timeline(live: LiveServer) -> list[str]:
    statuses = httpx.get(f"{live.sandbox}/_sandbox/weibo/timeline", timeout=5).json()["statuses"]
    return [s["text"] for s in statuses]


def _everywhere(live: LiveServer, notice_id: str) -> dict[str, bool]:
    """Where the notice shows now."""
    get = lambda path: httpx.get(f"{live.url}{path}", timeout=5)  # noqa: E731
    return {
        "m": TITLE in get("/m/").text,
        "page": get(f"/m/notices/{notice_id}").status_code == 200,
        "rss": any(TITLE in e.title for e in feedparser.parse(get("/feeds/tv.xml").content).entries),
        "atom": any(TITLE in e.title for e in feedparser.parse(get("/feeds/tv.atom").content).entries),
        "json": any(i["id"] == notice_id for i in json.loads(get("/feeds/tv.json").content)["items"]),
        "tv": TITLE in get("/tv/").text,
        "weibo": any(TITLE in text for text in _timeline(live)),
    }


def test_retracted_notice_is_gone_everywhere_within_five_seconds(live: LiveServer, session: Session) -> None:
    agency = create_agency(session, "衢州市住房和城乡建设局", "qz-zjj", "衢州市")
    session.commit()
    headers = {"Authorization": f"Bearer {make_key(session, agency, ['notices:send', 'notices:read']).key}"}
    body = {
        "title": TITLE,
        "body": "衢江区部分路段今夜停水抢修，预计明早 6 时恢复。",
        "channels": ["site", "tv", "weibo"],
        "urgency": "urgent",
    }
    r = httpx.post(f"{live.url}/api/v1/notices", json=body, headers=headers, timeout=10)
    assert r.status_code == 202, r.text
    notice_id = r.json()["id"]
    wait_until(lambda: all(_everywhere(live, notice_id).values()), timeout=20)

    retracted = httpx.post(
        f"{live.url}/api/v1/notices/{notice_id}/retract", json={"reason": "抢修已提前完成"}, headers=headers, timeout=10
    )
    assert retracted.status_code == 200 and retracted.json()["status"] == "retracted"
    took = wait_until(lambda: not any(_everywhere(live, notice_id).values()), timeout=5)
    assert took < 5
    page = httpx.get(f"{live.url}/m/notices/{notice_id}", timeout=5)
    assert page.status_code == 410 and "抢修已提前完成" in page.text
    audit = httpx.get(
        f"{live.url}/api/v1/audit",
        params={"target_type": "weibo_post"},
        headers={"Authorization": f"Bearer {make_key(session, agency, ['admin']).key}"},
        timeout=5,
    ).json()
    assert [(e["action"], e["changes"]["deleted"]) for e in audit["items"]] == [("retract", True)]
