"""End to end over loopback: compose on the phone site, the real pipeline sends through the sandbox,
the notice is published on the site, feeds and Weibo, and a number that left gets nothing more."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator

import feedparser
import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from govconnect.agencies.service import create_agency, create_staff
from govconnect.citizens.subscriptions import clean_preferences, subscribe_phone
from govconnect.settings import Settings
from tests.factories import make_key
from tests.govconnect.publishing.helpers import csrf_from
from tests.govconnect.publishing.live import LiveServer

STAYS, LEAVES = "13812340011", "13812340022"


@pytest.fixture
def live(settings: Settings, engine: Engine) -> Iterator[LiveServer]:
    with LiveServer(settings, engine, report_delay=0.05) as server:
        yield server


def wait_until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_compose_publish_everywhere_and_leavers_get_nothing(live: LiveServer, session: Session) -> None:
    agency = create_agency(session, "衢州市应急管理局", "qz-yjj", "衢州市")
    create_staff(session, "wangli", agency, "operator", "correct-horse-1", "王丽")
    prefs = clean_preferences(session, ["yjyj"], [], ["sms"])
    subscribe_phone(session, STAYS, prefs)
    subscribe_phone(session, LEAVES, prefs)
    session.commit()
    key = make_key(session, agency, ["notices:send", "notices:read"]).key

    with httpx.Client(base_url=live.url, timeout=10, follow_redirects=True) as phone:
        token = csrf_from(phone.get("/m/login").text)
        phone.post("/m/login", data={"username": "wangli", "password": "correct-horse-1", "csrf": token})
        form = phone.get("/m/staff/compose").text
        data = {
            "csrf": csrf_from(form),
            "nonce": re.search(r'name="nonce" value="([^"]+)"', form).group(1),  # type: ignore[union-attr]
            "title": "暴雨橙色预警",
            "body": "预计今夜有大暴雨，请减少外出。",
            "category": "yjyj",
            "channel": ["sms", "site", "tv", "weibo"],
            "urgent": "1",  # urgent: no quiet hours, whatever the time of day the test runs
        }
        sent = phone.post("/m/staff/compose", data=data)
        assert sent.status_code == 200 and "/m/staff/notices/" in str(sent.url)
        notice_id = str(sent.url).rsplit("/", 1)[1]
        again = phone.post("/m/staff/compose", data=data)  # a double tap: the same notice, not a second one
        assert str(again.url).endswith(notice_id)
        wait_until(lambda: "已完成" in phone.get(f"/m/staff/notices/{notice_id}").text)
        progress = phone.get(f"/m/staff/notices/{notice_id}").text
        assert "短信：已发 2 / 2" in progress and "微博：已发 1 / 1" in progress

    wait_until(lambda: len(live.sms_texts(STAYS)) == 1 and len(live.sms_texts(LEAVES)) == 1)
    assert "暴雨橙色预警" in live.sms_texts(STAYS)[0] or "大暴雨" in live.sms_texts(STAYS)[0]
    # Published: site, the three feeds, the TV page, the Weibo timeline with a link back.
    assert "暴雨橙色预警" in httpx.get(f"{live.url}/m/").text
    assert "暴雨橙色预警" in httpx.get(f"{live.url}/m/notices/{notice_id}").text
    rss = feedparser.parse(httpx.get(f"{live.url}/feeds/tv.xml").content)
    assert [e.title for e in rss.entries] == ["【紧急】暴雨橙色预警"]
    assert feedparser.parse(httpx.get(f"{live.url}/feeds/tv.atom").content).entries[0].link.endswith(notice_id)
    assert json.loads(httpx.get(f"{live.url}/feeds/tv.json").content)["items"][0]["id"] == notice_id
    assert "暴雨橙色预警" in httpx.get(f"{live.url}/tv/").text
    timeline = httpx.get(f"{live.sandbox}/_sandbox/weibo/timeline").json()["statuses"]
    assert len(timeline) == 1 and f"/m/notices/{notice_id}" in timeline[0]["text"]
    assert "暴雨橙色预警" in httpx.get(f"{live.url}/m/weibo").text

    live.reply_sms(LEAVES, "退订")
    second = httpx.post(
        f"{live.url}/api/v1/notices",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "title": "预警解除",
            "body": "暴雨预警已解除。",
            "category": "yjyj",
            "channels": ["sms"],
            "urgency": "urgent",
            "audience": {"subscribers": {}},
        },
        timeout=10,
    )
    assert second.status_code == 202, second.text
    wait_until(lambda: len(live.sms_texts(STAYS)) == 2)
    time.sleep(0.5)  # give a wrong send to the leaver every chance to show up
    assert len(live.sms_texts(LEAVES)) == 1
