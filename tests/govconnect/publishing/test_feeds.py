import json
from datetime import timedelta

import feedparser
from fastapi.testclient import TestClient
from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.clock import utcnow
from govconnect.web.feeds import TV_TEXT_LIMIT, TV_TITLE_LIMIT
from tests.govconnect.publishing.helpers import make_notice


def _seed(session: Session, agency: Agency) -> tuple[str, str, str]:
    storm = make_notice(session, agency, title="暴雨橙色预警", urgency="urgent", regions=["柯城区"])
    road = make_notice(
        session,
        agency,
        title="江山市城区部分道路将于本周末进行沥青摊铺施工请过往车辆提前绕行注意安全",
        body="施工" * 200,
        category="jtcx",
        regions=["江山市"],
        created_at=utcnow() - timedelta(minutes=5),
    )
    site_only = make_notice(session, agency, title="只在网站的通知", channels=["site"])
    return storm.id, road.id, site_only.id


def test_rss_and_atom_parse_and_are_cut_to_tv_limits(client: TestClient, session: Session, agency: Agency) -> None:
    storm, road, site_only = _seed(session, agency)
    for path, version in (("/feeds/tv.xml", "rss20"), ("/feeds/tv.atom", "atom10")):
        response = client.get(path)
        assert response.status_code == 200
        feed = feedparser.parse(response.content)
        assert not feed.bozo, feed.get("bozo_exception")
        assert feed.version == version
        assert feed.feed.language == "zh-CN" if version == "rss20" else True
        links = [e.link for e in feed.entries]
        assert links == [f"http://127.0.0.1:8000/m/notices/{storm}", f"http://127.0.0.1:8000/m/notices/{road}"]
        assert all(site_only not in link for link in links)
        first, second = feed.entries
        assert first.title.startswith("【紧急】")
        assert len(second.title) == TV_TITLE_LIMIT and second.title.endswith("…")
        assert len(second.summary) <= TV_TEXT_LIMIT
        # RSS <category> carries the Chinese label; Atom keeps the code as term and the name as label.
        expected = {"交通出行", "江山市"} if version == "rss20" else {"jtcx", "江山市"}
        assert {t.term for t in second.tags} == expected
        assert second.published_parsed is not None


def test_json_feed_is_valid_1_1(client: TestClient, session: Session, agency: Agency) -> None:
    storm, road, _ = _seed(session, agency)
    response = client.get("/feeds/tv.json")
    assert response.headers["content-type"].startswith("application/feed+json")
    doc = json.loads(response.content)
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert doc["title"] and doc["feed_url"].endswith("/feeds/tv.json")
    assert [i["id"] for i in doc["items"]] == [storm, road]
    for item in doc["items"]:
        assert set(item) >= {"id", "url", "title", "content_text", "date_published"}
        assert len(item["content_text"]) <= TV_TEXT_LIMIT and len(item["title"]) <= TV_TITLE_LIMIT
    extension = doc["items"][0]["_govconnect"]
    assert extension == {**extension, "urgent": True, "category": "yjyj", "regions": ["柯城区"]}
    # Times in Beijing time, as the TV page shows them.
    assert doc["items"][0]["date_published"].endswith("+08:00")
    assert extension["published_local"] == doc["items"][0]["date_published"][:16].replace("T", " ")


def test_feeds_filter_by_category_and_region(client: TestClient, session: Session, agency: Agency) -> None:
    storm, road, _ = _seed(session, agency)
    city_wide = make_notice(session, agency, title="全市通知", category="jtcx", regions=[])
    by_category = feedparser.parse(client.get("/feeds/tv.atom", params={"category": "jtcx"}).content)
    assert [e.link.rsplit("/", 1)[1] for e in by_category.entries] == [city_wide.id, road]
    by_region = json.loads(client.get("/feeds/tv.json", params={"region": "柯城区"}).content)
    assert [i["id"] for i in by_region["items"]] == [city_wide.id, storm]
    assert "region=%E6%9F%AF%E5%9F%8E%E5%8C%BA" in by_region["feed_url"]
    both = feedparser.parse(client.get("/feeds/tv.xml", params={"category": "jtcx", "region": "柯城区"}).content)
    assert [e.link.rsplit("/", 1)[1] for e in both.entries] == [city_wide.id]


def test_conditional_requests_get_304(client: TestClient, session: Session, agency: Agency) -> None:
    _seed(session, agency)
    for path in ("/feeds/tv.xml", "/feeds/tv.atom", "/feeds/tv.json"):
        first = client.get(path)
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        again = client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        assert client.get(path, headers={"If-Modified-Since": modified}).status_code == 304
        assert client.get(path, headers={"If-None-Match": '"stale"', "If-Modified-Since": modified}).status_code == 200
    etags = {client.get(p).headers["etag"] for p in ("/feeds/tv.xml", "/feeds/tv.atom", "/feeds/tv.json")}
    assert len(etags) == 3
    before = client.get("/feeds/tv.json").headers["etag"]
    make_notice(session, agency, title="新通知")
    changed = client.get("/feeds/tv.json", headers={"If-None-Match": before})
    assert changed.status_code == 200 and changed.headers["etag"] != before
    assert client.get("/feeds/tv.json", headers={"If-Modified-Since": "garbage"}).status_code == 200


def test_empty_feed_is_still_valid(client: TestClient) -> None:
    feed = feedparser.parse(client.get("/feeds/tv.xml", params={"category": "nope"}).content)
    assert not feed.bozo and feed.entries == []
    assert client.get("/feeds/tv.xml", params={"category": "x" * 65}).status_code == 422
