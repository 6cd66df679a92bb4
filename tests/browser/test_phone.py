"""The mobile site on a 390×844 phone: a staff member finds a colleague; a citizen subscribes and leaves by SMS."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from govconnect.agencies.service import create_agency, create_staff
from govconnect.citizens.models import Subscriber
from tests.govconnect.publishing.helpers import make_notice
from tests.govconnect.publishing.live import LiveServer
from tests.govconnect.publishing.test_staff_directory import seed_directory

pytestmark = pytest.mark.browser
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def test_staff_signs_in_searches_and_finds_the_tel_link(
    browser: Any, live_server: LiveServer, session: Session, artifacts: Path
) -> None:
    agency = create_agency(session, "衢州市人民政府办公室", "qz-gov", "衢州市")
    create_staff(session, "liuyang", agency, "staff", "correct-horse-1", "刘洋")
    session.commit()
    seed_directory(session, live_server.settings)
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/m/staff/")
        assert "/m/login" in page.url  # not signed in yet
        page.fill("#username", "liuyang")
        page.fill("#password", "correct-horse-1")
        page.screenshot(path=str(artifacts / "1-login.png"))
        page.click("#login")
        page.wait_for_url(re.compile(r"/m/staff/$"))
        page.locator("#q").press_sequentially("zhangwei", delay=30)
        link = page.locator("a.contact-link", has_text="张伟")
        link.wait_for(timeout=10_000)  # instant results, no form submit
        assert page.url.endswith("/m/staff/?q=zhangwei")
        page.screenshot(path=str(artifacts / "2-instant-results.png"))
        link.click()
        page.wait_for_url(re.compile(r"/m/staff/contacts/\d+$"))
        card = page.locator("#contact-card")
        assert "张伟" in card.inner_text()
        tel_links = [a.get_attribute("href") for a in card.locator('a[href^="tel:"]').all()]
        assert "tel:13905701234" in tel_links and "tel:05703012345" in tel_links and "tel:661234" in tel_links
        assert card.locator('a[href="sms:13905701234"]').count() == 1
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390  # nothing overflows the phone's width
        page.screenshot(path=str(artifacts / "3-contact-card.png"), full_page=True)
    finally:
        context.close()


def test_citizen_subscribes_with_sms_code_then_leaves_by_replying_td(
    browser: Any, live_server: LiveServer, session: Session, artifacts: Path
) -> None:
    phone = "13812340001"
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/m/")
        page.click("text=订阅")
        page.fill("#phone", phone)
        page.screenshot(path=str(artifacts / "1-subscribe.png"))
        page.click("#send-code")
        page.locator("#code").wait_for()
        [sms] = live_server.sms_texts(phone)  # the code SMS went through the SMS channel to the sandbox
        code = re.search(r"(?<!\d)\d{6}(?!\d)", sms).group(0)  # type: ignore[union-attr]
        page.fill("#code", code)
        page.uncheck('input[name="category"][value="jy"]')
        page.check('input[name="region"][value="江山市"]')
        page.screenshot(path=str(artifacts / "2-code-and-choices.png"), full_page=True)
        page.click("#confirm")
        page.wait_for_url(re.compile(r"/m/subscription"))
        assert "订阅成功" in page.content() and "订阅中" in page.locator("#sub-status").inner_text()
        page.screenshot(path=str(artifacts / "3-subscribed.png"))
        subscriber = session.exec(select(Subscriber).where(Subscriber.phone == phone)).one()
        assert subscriber.status == "active"
        live_server.reply_sms(phone, "TD")  # SmsUp pushed to the gateway's callback → opt-out
        page.reload()
        assert "已退订" in page.locator("#sub-status").inner_text()
        page.screenshot(path=str(artifacts / "4-left-by-td.png"))
        session.expire_all()
        assert session.get(Subscriber, subscriber.id).status == "unsubscribed"  # type: ignore[union-attr]
    finally:
        context.close()


SMALL_PHONE = {**PHONE, "viewport": {"width": 360, "height": 640}}
LONG_URGENT_TITLES = (
    "衢江区、柯城区沿江低洼地带今夜至明晨将出现特大暴雨，请沿线居民立即做好转移避险准备并听从现场指挥",
    "开化县山区发生山洪灾害可能性很大，已发布山洪灾害红色预警，请危险区域群众立即转移至安全地带",
    "江山市须江水位持续上涨超过警戒水位，沿江道路临时封闭，请过往车辆和行人绕行并远离河道堤岸",
    "常山县部分乡镇因强降雨发生山体滑坡，相关道路交通中断，请市民暂缓前往并关注后续通行信息",
)


@pytest.mark.parametrize("device", [SMALL_PHONE, PHONE], ids=["360x640", "390x844"])
def test_staff_search_box_stays_in_the_first_screen_with_urgent_notices_live(
    browser: Any, live_server: LiveServer, session: Session, artifacts: Path, device: dict[str, Any]
) -> None:
    agency = create_agency(session, "衢州市人民政府办公室", "qz-gov", "衢州市")
    create_staff(session, "liuyang", agency, "staff", "correct-horse-1", "刘洋")
    session.commit()
    seed_directory(session, live_server.settings)
    for title in LONG_URGENT_TITLES:
        make_notice(session, agency, title=title, urgency="urgent")
    context = browser.new_context(**device)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/m/login?next=/m/staff/")
        page.fill("#username", "liuyang")
        page.fill("#password", "correct-horse-1")
        page.click("#login")
        page.wait_for_url(re.compile(r"/m/staff/$"))
        height = device["viewport"]["height"]
        banners = page.locator(".urgent")
        assert banners.count() == 1  # one compact line, not every urgent notice
        banner = banners.bounding_box()
        assert banner is not None and banner["height"] <= 40
        assert "另有 3 条" in banners.inner_text()
        search = page.locator("#q").bounding_box()
        assert search is not None and search["y"] + search["height"] <= height  # in the first screen
        page.screenshot(path=str(artifacts / "1-staff-home-with-urgent.png"))
        page.locator("#q").press_sequentially("zhangwei", delay=30)
        page.locator("a.contact-link", has_text="张伟").wait_for(timeout=10_000)
        numbers = page.locator("#results .numbers").first
        assert numbers.locator(".num-label").all_inner_texts() == ["办公", "手机", "短号"]
        page.screenshot(path=str(artifacts / "2-results-number-labels.png"))
        # The public home page still lists every urgent notice in full (up to three).
        page.goto(f"{live_server.url}/m/")
        assert page.locator(".urgent").count() == 3
    finally:
        context.close()
