"""Control characters are refused in every text input (422); stored ones never break a feed or a page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import feedparser
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from govconnect.app import create_app
from govconnect.escaping import xml_text
from govconnect.settings import Settings
from govconnect.text_rules import multiline, no_bidi_controls, no_control_characters
from tests.factories import make_agency, make_categories, make_key
from tests.govconnect.publishing.helpers import make_notice

NOTICE = {"title": "停水通知", "body": "明日停水。", "channels": ["site"], "category": "yjyj"}


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine)) as c:
        yield c


@pytest.fixture
def writer(session: Session) -> dict[str, str]:
    agency = make_agency(session)
    make_categories(session)
    key = make_key(session, agency, ["notices:send", "notices:read", "contacts:write"]).key
    return {"Authorization": f"Bearer {key}"}


def test_the_rules() -> None:
    assert no_control_characters("第一行\n\t第二行") == "第一行\n\t第二行"
    for bad in ("a\x00b", "a\rb", "a\x1bb", "a\x7fb", "a\x85b", "a\ud800b", "a\uffffb"):
        with pytest.raises(ValueError, match="控制字符"):
            no_control_characters(bad)
    assert multiline("一\r\n二\r三") == "一\n二\n三"  # a textarea's CRLF is a newline
    with pytest.raises(ValueError, match="双向"):
        no_bidi_controls("通知\u202etxt.exe")
    assert xml_text("a\x00b\x0bc\ufffed\n") == "abcd\n"


def test_api_refuses_control_characters_and_bidi_overrides(client: TestClient, writer: dict[str, str]) -> None:
    bad_notices: list[dict[str, Any]] = [
        {**NOTICE, "title": "停水\x00通知"},
        {**NOTICE, "body": "明日\x07停水"},
        {**NOTICE, "title": "停水\u202e知通"},
        {**NOTICE, "title": "停水\u2066通知"},
        {**NOTICE, "regions": ["柯城区\x00"]},
        {**NOTICE, "audience": {"csv": "phone\n1380013\x008000\n"}},
        {**NOTICE, "title": "\ud800"},
    ]
    for body in bad_notices:
        # ASCII-escaped JSON, so a lone surrogate travels as the text "\ud800", as an attacker would send it.
        raw = json.dumps(body).encode()
        r = client.post("/api/v1/notices", content=raw, headers={**writer, "Content-Type": "application/json"})
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == "validation_error"
    bad_directory = [
        ("/api/v1/contacts", {"name": "张\x00伟", "department": "衢州市人民政府办公室"}),
        ("/api/v1/contacts", {"name": "张伟", "department": "衢州市\x1b办公室"}),
        ("/api/v1/departments", {"name": "办公室\u202e"}),
        ("/api/v1/departments", {"name": "办公室", "aliases": ["办\x00"]}),
    ]
    for path, body in bad_directory:
        r = client.post(path, json=body, headers=writer)
        assert r.status_code == 422, (path, body, r.text)
    # Tabs and newlines are text; CRLF from a form is kept as a newline.
    ok = client.post("/api/v1/notices", json={**NOTICE, "body": "第一行\r\n\t第二行"}, headers=writer)
    assert ok.status_code == 202, ok.text


def test_urls_with_control_characters_are_refused_everywhere(client: TestClient, writer: dict[str, str]) -> None:
    for url in ("/m/?region=%00", "/m/notices/%00abc", "/api/v1/notices?category=%1b", "/feeds/tv.xml?region=a%0Db"):
        r = client.get(url, headers=writer)
        assert r.status_code == 422, url
        assert r.json()["error"]["details"][0]["type"] == "control_character"
    # Raw UTF-8 in a query string (not percent-encoded) is text, not C1 controls.
    assert client.get("/m/?region=柯城区").status_code == 200


def test_a_nul_stored_in_the_database_still_renders_every_feed_and_page(
    client: TestClient, session: Session, db_backend: str
) -> None:
    # PostgreSQL text cannot hold NUL at all; other controls break XML the same way.
    nul = "\x00" if db_backend == "sqlite" else "\x01"
    agency = make_agency(session, code="qz-nul")
    bad = make_notice(
        session, agency, title=f"暴雨{nul}预警\x0b", body=f"请注意{nul}防范\ufffe", regions=[f"柯城区{nul}"]
    )
    for path, version in (("/feeds/tv.xml", "rss20"), ("/feeds/tv.atom", "atom10")):
        response = client.get(path)
        assert response.status_code == 200, path
        feed = feedparser.parse(response.content)
        assert not feed.bozo, (path, feed.get("bozo_exception"))
        assert feed.version == version
        assert feed.entries[0].title.endswith("暴雨预警")
    # feedparser 6 reads no JSON Feed: parse it as JSON.
    doc = client.get("/feeds/tv.json").json()
    assert doc["items"][0]["title"] == "暴雨预警" and doc["items"][0]["_govconnect"]["regions"] == ["柯城区"]
    for path in ("/m/", f"/m/notices/{bad.id}", "/tv/"):
        page = client.get(path)
        assert page.status_code == 200 and "暴雨预警" in page.text and nul not in page.text, path


def test_rss_channel_link_is_the_site(client: TestClient) -> None:
    feed = feedparser.parse(client.get("/feeds/tv.xml").content)
    assert feed.feed.link == "http://127.0.0.1:8000/m/"
    assert any(link.rel == "self" and link.href.endswith("/feeds/tv.xml") for link in feed.feed.links)
