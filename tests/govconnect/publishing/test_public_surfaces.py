"""What every public surface (/m/, /tv/, the three feeds, Weibo) shows of a notice: public text, its
regions, Beijing time and when it went out."""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import feedparser
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.agencies.service import create_agency
from govconnect.clock import utcnow
from govconnect.demo.notices import FLOOD_NOTICE
from govconnect.notices.models import Notice
from govconnect.notices.publication import public_text, publishing_regions
from govconnect.settings import Settings
from govconnect.web.rendering import localtime
from tests.factories import make_key, make_subscriber
from tests.govconnect.publishing.helpers import make_notice
from tests.govconnect.publishing.live import LiveServer
from tests.govconnect.publishing.test_broadcast_live import wait_until

PUBLIC_PAGES = ("/m/", "/tv/", "/feeds/tv.xml", "/feeds/tv.atom", "/feeds/tv.json", "/m/weibo")


@pytest.fixture
def live(settings: Settings, engine: Engine) -> Iterator[LiveServer]:
    with LiveServer(settings, engine, report_delay=0.05) as server:
        yield server


def test_public_text_fills_a_name_and_leaves_out_the_rest() -> None:
    assert public_text("((name))您好：今夜有大暴雨。") == "市民您好：今夜有大暴雨。"
    assert public_text("(( 姓名 ))：请于((date))前缴费") == "市民：请于前缴费"
    assert public_text("没有占位符") == "没有占位符"


def test_publishing_regions_come_from_the_audience_when_the_notice_names_none() -> None:
    assert publishing_regions(["柯城区"], {"subscribers": {"regions": ["江山市"]}}) == ["柯城区"]
    assert publishing_regions([], {"subscribers": {"regions": ["江山市"]}}) == ["江山市"]
    assert publishing_regions([], {"staff": {"regions": ["衢江区"], "departments": [3]}}) == ["衢江区"]
    # Subscribers everywhere: the whole city, whatever a staff part of the audience says.
    assert publishing_regions([], {"subscribers": {}, "staff": {"regions": ["衢江区"]}}) == []
    assert publishing_regions([], {}) == []


def test_the_demo_flood_warning_reads_as_public_text_in_its_region_everywhere(
    live: LiveServer, session: Session
) -> None:
    """The demo's first notice, sent as printed: personal SMS, public text and 江山市 on every public channel."""
    agency = create_agency(session, "衢州市应急管理局", "qz-yjj", "衢州市")
    session.commit()
    make_subscriber(session, "13812340031", categories=["yjyj"], regions=["江山市"], channels=["sms"], name="张三")
    key = make_key(session, agency, ["notices:send", "notices:read"]).key
    body = {**FLOOD_NOTICE, "channels": [*FLOOD_NOTICE["channels"], "tv", "weibo"]}
    sent = httpx.post(f"{live.url}/api/v1/notices", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=10)
    assert sent.status_code == 202, sent.text
    notice_id = sent.json()["id"]
    timeline_url = f"{live.sandbox}/_sandbox/weibo/timeline"
    wait_until(lambda: bool(httpx.get(timeline_url).json()["statuses"]) and bool(live.sms_texts("13812340031")))
    assert live.sms_texts("13812340031")[0].count("张三您好") == 1  # the person still gets their name

    [post] = httpx.get(timeline_url).json()["statuses"]
    pages = {path: httpx.get(live.url + path).text for path in PUBLIC_PAGES}
    pages["/m/notices/"] = httpx.get(f"{live.url}/m/notices/{notice_id}").text
    pages["/m/search"] = httpx.get(f"{live.url}/m/search", params={"q": "暴雨"}).text
    pages["weibo post"] = post["text"]
    for where, text in pages.items():
        assert "((" not in text and "))" not in text, where
        if where not in ("/m/", "/m/search"):  # the lists show titles only
            assert "市民您好" in text, where
    assert "江山市" in pages["/m/notices/"] and "全市" not in pages["/m/notices/"].split("<footer")[0]
    [item] = json.loads(pages["/feeds/tv.json"])["items"]
    assert item["_govconnect"]["regions"] == ["江山市"] and item["content_text"].startswith("市民您好")


def test_placeholders_a_public_channel_cannot_fill_are_refused(client: TestClient, session: Session) -> None:
    agency = create_agency(session, "衢州市人力资源和社会保障局", "qz-rsj", "衢州市")
    session.commit()
    key = make_key(session, agency, ["notices:send"]).key
    notice = {
        "title": "缴费提醒",
        "body": "((name))您好：请于月底前缴纳((amount))元。",
        "category": "yjyj",
        "channels": ["sms", "site"],
        "audience": {"csv": "phone,name,amount\n13812340041,张三,300\n"},
    }
    refused = client.post("/api/v1/notices", headers={"Authorization": f"Bearer {key}"}, json=notice)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "placeholder_on_public_channel"
    assert "公开" in error["message"] and "Public channels" in error["message"]
    assert error["details"] == {"placeholders": ["amount"], "channels": ["site"]}
    # The same text by SMS alone is personal and fine.
    private = client.post(
        "/api/v1/notices", headers={"Authorization": f"Bearer {key}"}, json={**notice, "channels": ["sms"]}
    )
    assert private.status_code == 202, private.text


def test_stored_placeholders_never_reach_a_public_page(client: TestClient, session: Session, agency: Agency) -> None:
    """Rows accepted before the rule (or edited in the database) still show public text."""
    notice = make_notice(session, agency, title="((name))请注意", body="((name))您好：((date))停水。", urgency="urgent")
    for path in (*PUBLIC_PAGES, f"/m/notices/{notice.id}", "/m/?region=柯城区"):
        text = client.get(path).text
        assert "((" not in text, path
        assert "市民请注意" in text, path


def _region_notices(session: Session, agency: Agency) -> tuple[Notice, Notice, Notice]:
    qujiang = make_notice(
        session,
        agency,
        title="衢江区停水通知",
        urgency="urgent",
        audience={"subscribers": {"categories": ["yjyj"], "regions": ["衢江区"]}},
    )
    kecheng = make_notice(session, agency, title="柯城区道路施工", regions=["柯城区"])
    city = make_notice(session, agency, title="全市防汛演练", audience={"subscribers": {"categories": ["yjyj"]}})
    return qujiang, kecheng, city


def _ids(doc: dict[str, Any]) -> set[str]:
    return {i["id"] for i in doc["items"]}


def test_audience_regions_are_publishing_regions_on_feeds_tv_and_site(
    client: TestClient, session: Session, agency: Agency
) -> None:
    qujiang, kecheng, city = _region_notices(session, agency)
    assert _ids(client.get("/feeds/tv.json", params={"region": "柯城区"}).json()) == {kecheng.id, city.id}
    assert _ids(client.get("/feeds/tv.json", params={"region": "衢江区"}).json()) == {qujiang.id, city.id}
    rss = feedparser.parse(client.get("/feeds/tv.xml", params={"region": "柯城区"}).content)
    assert {e.link.rsplit("/", 1)[1] for e in rss.entries} == {kecheng.id, city.id}
    tv = client.get("/tv/", params={"region": "柯城区"}).text
    assert kecheng.title in tv and qujiang.title not in tv
    home = client.get("/m/", params={"region": "柯城区"}).text
    assert kecheng.title in home and qujiang.title not in home  # neither listed nor in the urgent banner
    assert qujiang.title in client.get("/m/", params={"region": "衢江区"}).text
    detail = client.get(f"/m/notices/{qujiang.id}").text
    assert "衢江区" in detail.split('class="meta"', 1)[1].split("</div>", 1)[0]


def test_urgent_banner_on_the_site_follows_the_region(client: TestClient, session: Session, agency: Agency) -> None:
    make_notice(session, agency, title="衢江区山洪预警", urgency="urgent", regions=["衢江区"])
    make_notice(session, agency, title="柯城区道路施工", regions=["柯城区"])

    def banner(params: dict[str, str]) -> str:
        page = client.get("/m/", params=params).text
        return "".join(re.findall(r'<div class="urgent[^"]*"[^>]*>.*?</div>', page))

    assert "衢江区山洪预警" in banner({})
    assert "衢江区山洪预警" in banner({"region": "衢江区"})
    assert banner({"region": "柯城区"}) == ""


def test_scheduled_notice_is_published_when_it_went_out(client: TestClient, session: Session, agency: Agency) -> None:
    created = utcnow() - timedelta(days=2)
    went_out = utcnow() - timedelta(hours=3)
    scheduled = make_notice(session, agency, title="定时发布的通知", created_at=created, send_at=went_out)
    recorded = make_notice(
        session, agency, title="审核后发布的通知", created_at=created, published_at=utcnow() - timedelta(hours=1)
    )
    items = {i["id"]: i for i in client.get("/feeds/tv.json").json()["items"]}
    assert abs(_parse(items[scheduled.id]["date_published"]) - went_out) < timedelta(seconds=1)
    assert abs(_parse(items[recorded.id]["date_published"]) - recorded.published_at) < timedelta(seconds=1)  # type: ignore[operator]
    # Newest publication first, whatever the creation order.
    assert list(items) == [recorded.id, scheduled.id]
    atom = feedparser.parse(client.get("/feeds/tv.atom").content)
    assert abs(calendar.timegm(atom.entries[1].published_parsed) - went_out.timestamp()) < 1
    assert localtime(went_out) in client.get(f"/m/notices/{scheduled.id}").text


def _parse(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value)
