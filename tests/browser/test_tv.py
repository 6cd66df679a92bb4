"""The TV page on a 1280×720 screen, driven by remote-control keys only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from govconnect.agencies.service import create_agency
from govconnect.clock import utcnow
from govconnect.web.rendering import localtime
from tests.govconnect.publishing.helpers import make_notice

pytestmark = pytest.mark.browser


def test_tv_page_with_arrow_keys_and_urgent_takeover(
    browser: Any, live_server: Any, session: Session, artifacts: Path
) -> None:
    agency = create_agency(session, "衢州市人民政府办公室", "qz-gov", "衢州市")
    session.commit()
    make_notice(session, agency, title="市政府常务会议召开", category="zwgk", channels=["tv"])
    make_notice(session, agency, title="衢江大桥夜间封闭施工", category="jtcx", channels=["tv"])
    make_notice(session, agency, title="医保缴费截止提醒", category="sbyl", channels=["tv", "site"])
    make_notice(session, agency, title="只在网站的通知", channels=["site"])
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    try:
        page.goto(f"{live_server.url}/tv/?poll=2&rotate=60")
        selected = page.locator("#list li.sel")
        assert page.locator("#list li").count() == 3
        first = selected.inner_text()
        page.screenshot(path=str(artifacts / "1-tv-start.png"))
        page.keyboard.press("ArrowDown")
        second = selected.inner_text()
        assert second != first
        assert page.locator("#hero h1").inner_text() == second
        page.keyboard.press("ArrowUp")
        assert selected.inner_text() == first
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
        detail = page.locator("#detail")
        assert detail.is_visible() and detail.locator("h2").inner_text() == second
        page.screenshot(path=str(artifacts / "2-tv-detail.png"))
        page.keyboard.press("Backspace")
        assert not detail.is_visible()
        assert page.url.endswith("/tv/?poll=2&rotate=60")  # Backspace is Back inside the page, never history
        page.keyboard.press("ArrowRight")  # 全部 → 政务公开
        assert page.locator("#tabs span.on").inner_text() == "政务公开"
        assert page.locator("#list li").all_inner_texts() == ["市政府常务会议召开"]
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")  # 社保医疗
        assert page.locator("#list li").all_inner_texts() == ["医保缴费截止提醒"]
        page.screenshot(path=str(artifacts / "3-tv-category.png"))
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowLeft")
        assert page.locator("#tabs span.on").inner_text() == "全部"
        assert page.locator("#alert").is_hidden()
        make_notice(
            session,
            agency,
            title="山洪灾害红色预警",
            body="开化县山区请立即转移",
            urgency="urgent",
            channels=["tv", "sms"],
        )
        alert = page.locator("#alert")
        alert.wait_for(state="visible", timeout=10_000)
        assert alert.locator("h2").inner_text() == "山洪灾害红色预警"
        box = alert.bounding_box()
        assert box is not None and box["width"] == 1280 and box["height"] == 720
        page.screenshot(path=str(artifacts / "4-tv-urgent-takeover.png"))
        page.keyboard.press("ArrowDown")  # other keys do not get past the alert
        assert alert.is_visible()
        page.keyboard.press("Enter")
        assert alert.is_hidden()
        assert "【紧急】山洪灾害红色预警" in page.locator("#list").inner_text()
        page.screenshot(path=str(artifacts / "5-tv-after-alert.png"))
    finally:
        page.close()
    full_hd = browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        full_hd.goto(f"{live_server.url}/tv/?rotate=60")
        size = full_hd.evaluate("parseFloat(getComputedStyle(document.querySelector('#hero h1')).fontSize)")
        assert size >= 60  # type scales with the screen: 6vh of 1080 px
        full_hd.screenshot(path=str(artifacts / "6-tv-1920x1080.png"))
    finally:
        full_hd.close()


def test_tv_shows_beijing_time_whatever_the_box_time_zone(
    browser: Any, live_server: Any, session: Session, artifacts: Path
) -> None:
    agency = create_agency(session, "衢州市人民政府办公室", "qz-gov", "衢州市")
    session.commit()
    # 18:30 UTC is 02:30 the next day in Beijing: the date and the hour both differ.
    went_out = (utcnow() - timedelta(days=1)).replace(hour=18, minute=30, second=0, microsecond=0)
    make_notice(session, agency, title="夜间停水通知", channels=["tv"], created_at=went_out)
    beijing = localtime(went_out)
    assert beijing.endswith("02:30")
    context = browser.new_context(viewport={"width": 1280, "height": 720}, timezone_id="America/New_York")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/tv/?poll=2&rotate=60")
        assert page.locator("#hero .time").inner_text() == beijing
        clock = page.locator("#clock").inner_text()
        now = datetime.now(UTC)
        allowed = {localtime(now + timedelta(minutes=m), "%H:%M") for m in (-1, 0, 1)}
        assert clock in allowed, (clock, allowed)  # Beijing, not New York
        page.wait_for_timeout(2500)  # the page refreshed from /feeds/tv.json and drew the hero again
        assert page.locator("#hero .time").inner_text() == beijing
        page.screenshot(path=str(artifacts / "tv-beijing-time.png"))
    finally:
        context.close()
