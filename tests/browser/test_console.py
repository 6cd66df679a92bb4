"""The operator console in Chromium at 1366×768: the issue's whole sign-off flow, with screenshots of each page."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import Workbook
from playwright.sync_api import expect
from sqlmodel import Session, select

from contacts.models import Department
from govconnect.agencies.service import create_agency, create_staff
from govconnect.audit.record import Actor
from govconnect.governance.policy import set_policy
from govconnect.message_templates.schemas import TemplateCreate
from govconnect.message_templates.service import create_template
from govconnect.notices.models import Notice
from tests.govconnect.publishing.live import LiveServer
from tests.govconnect.publishing.test_staff_directory import seed_directory

pytestmark = pytest.mark.browser
DESKTOP = {"viewport": {"width": 1366, "height": 768}, "locale": "zh-CN"}
PASSWORD = "correct-horse-1"  # noqa: S105 - test accounts


def _xlsx(path: Path) -> Path:
    """Five rows: three good numbers, one invalid, one without a number."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (
        ("手机号", "姓名"),
        ("13800001111", "张三"),
        ("12345", "李四"),
        ("13800002222", "王五"),
        ("", "赵六"),
        ("13800003333", "钱七"),
    ):
        sheet.append(row)
    book.save(path)
    return path


def _sign_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/console/")
    page.wait_for_url(re.compile(r"/m/login\?next=%2Fconsole%2F"))
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(re.compile(r"/console/$"))


def _sign_out(page: Any) -> None:
    page.click("text=退出登录")
    page.wait_for_url(re.compile(r"/m/$"))


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
def test_operator_composes_approver_rejects_then_approves_and_operator_retracts(
    browser: Any, live_server: LiveServer, session: Session, artifacts: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    agency = create_agency(session, "衢州市应急管理局", "qz-yjj", "衢州市")
    create_staff(session, "wangli", agency, "operator", PASSWORD, "王丽")
    create_staff(session, "zhaomin", agency, "approver", PASSWORD, "赵敏")
    create_staff(session, "chenjing", agency, "admin", PASSWORD, "陈静")
    set_policy(session, agency.id or 0, Actor.cli(agency.id), require_approval="all")
    template, _version = create_template(
        session,
        agency.id or 0,
        TemplateCreate.model_validate(
            {
                "name": "防汛预警",
                "title": "江山市防汛预警",
                "variants": {
                    "sms": {"text": "((name))您好：今夜有暴雨，请远离河道。"},
                    "site": {"text": "((name))您好：今夜有暴雨，请远离河道。"},
                },
            }
        ),
    )
    session.commit()
    seed_directory(session, live_server.settings)
    office = session.exec(select(Department).where(Department.path == "衢州市人民政府办公室")).one()
    xlsx = _xlsx(tmp_path / "名单.xlsx")
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    base = live_server.url
    try:
        # The operator signs in through the staff sign-in and lands on the dashboard.
        _sign_in(page, base, "wangli")
        assert page.locator("nav.side a.on").inner_text() == "工作台"
        page.screenshot(path=str(artifacts / "1-dashboard.png"))

        # Compose: template → uploaded XLSX (2 bad rows reported) + a staff department → SMS and the site.
        page.click("nav.side >> text=发布通知")
        page.check('input[name="mode"][value="template"]')
        assert page.locator("#title").is_hidden()  # free-text fields hide in template mode
        page.select_option("#template_id", str(template.id))
        page.check(f'input[name="department"][value="{office.id}"]')
        page.set_input_files("#audience_file", str(xlsx))
        page.check('input[name="urgent"]')  # not held by quiet hours whatever time the test runs
        page.click("#check")
        page.wait_for_selector("#recipient-count")
        report = page.locator("#upload-report").inner_text()
        assert "接受 3" in report and "拒绝 2" in report
        assert page.locator("#refused-rows tbody tr").count() == 2
        assert "将发送给 4 人" in page.locator("#recipient-count").inner_text()  # 3 rows + 张伟 of the office
        assert "【" in page.locator(".preview.ch-sms").inner_text()
        page.screenshot(path=str(artifacts / "2-compose-checked.png"), full_page=True)
        page.click("#submit")
        page.wait_for_url(re.compile(r"/console/notices/[0-9a-f]{32}\?done=submitted"))
        notice_url = page.url.split("?")[0]
        assert "待审核" in page.locator("#notice-status").inner_text()
        assert "等待审核" in page.locator("#held").inner_text()
        page.screenshot(path=str(artifacts / "3-notice-pending.png"), full_page=True)
        _sign_out(page)

        # The approver finds it in the queue and sends it back with a reason.
        _sign_in(page, base, "zhaomin")
        page.click("nav.side >> text=审核")
        assert "江山市防汛预警" in page.locator("#h-queue + article, .preview-card").first.inner_text()
        page.screenshot(path=str(artifacts / "4-approvals.png"), full_page=True)
        page.goto(notice_url)
        page.fill("#reject-reason", "请注明暴雨时间")
        page.click("#reject")
        page.wait_for_url(re.compile(r"done=rejected"))
        _sign_out(page)

        # The drafter sees why, edits and submits again.
        _sign_in(page, base, "wangli")
        page.goto(notice_url)
        assert "请注明暴雨时间" in page.locator("#rejected-reason").inner_text()
        page.fill("#edit-body", "((name))您好：今夜22时起有暴雨，请远离河道。")
        page.screenshot(path=str(artifacts / "5-rejected-edit.png"), full_page=True)
        page.click("#save-edit")
        page.wait_for_url(re.compile(r"done=edited"))
        page.click("#submit-notice")
        page.wait_for_url(re.compile(r"done=submitted"))
        _sign_out(page)

        # The approver approves; progress reaches 100% on the page without a reload.
        _sign_in(page, base, "zhaomin")
        page.goto(notice_url)
        page.click("#approve")
        page.wait_for_url(re.compile(r"done=approved"))
        page.evaluate("window.__samePage = 'yes'")
        # Playwright's own matcher: the page's CSP forbids the string predicates of wait_for_function.
        expect(page.locator("#overall-percent")).to_have_text("100%", timeout=30_000)
        assert page.evaluate("window.__samePage") == "yes"  # the script updated it; the page never reloaded
        assert "4/4" in page.locator("#channel-progress").inner_text()
        # The deliveries table was drawn before they were sent: the page says it is out of date.
        expect(page.locator("#d-stale")).to_be_visible()
        page.screenshot(path=str(artifacts / "6-progress-100.png"), full_page=True)
        _sign_out(page)

        # The operator retracts it: gone from /m/.
        notice = session.exec(select(Notice)).one()
        assert notice.title in httpx.get(f"{base}/m/", timeout=5).text
        _sign_in(page, base, "wangli")
        page.goto(notice_url)
        page.click("summary:has-text('撤回')")
        page.fill("#retract-reason", "预警已解除")
        page.click("#retract")
        page.wait_for_url(re.compile(r"done=retracted"))
        assert "已撤回" in page.locator("#notice-status").inner_text()
        page.screenshot(path=str(artifacts / "7-retracted.png"), full_page=True)
        page.goto(f"{base}/m/")
        assert notice.title not in page.content()
        page.goto(f"{base}/console/notices")
        page.screenshot(path=str(artifacts / "8-notices.png"))
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        page.set_viewport_size({"width": 1024, "height": 768})  # a tablet held sideways
        page.goto(notice_url)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1024
        page.screenshot(path=str(artifacts / "8b-notice-tablet.png"))
        page.set_viewport_size(DESKTOP["viewport"])
        _sign_out(page)

        # An admin creates an API key (shown once), revokes it, and adds a staff account.
        _sign_in(page, base, "chenjing")
        page.click("nav.side >> text=API 密钥")
        page.fill("#key-name", "值班系统")
        page.click("#create-key")
        key = page.locator("#issued-key .secret").inner_text().strip()
        assert key.startswith("gck_")
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{base}/api/v1/notices", headers=headers, timeout=5).status_code == 200
        page.screenshot(path=str(artifacts / "9-key-created.png"), full_page=True)
        page.click("#key-table a")
        page.click("#revoke-key")
        expect(page.locator("#key-status")).to_contain_text("已吊销")
        assert httpx.get(f"{base}/api/v1/notices", headers=headers, timeout=5).status_code == 401
        page.click("nav.side >> text=团队")
        page.fill("#new-username", "sunli")
        page.fill("#new-name", "孙立")
        page.select_option("#new-role", "operator")
        page.fill("#new-password", PASSWORD)
        page.click("#create-staff")
        expect(page.locator("#team-table")).to_contain_text("孙立")
        page.screenshot(path=str(artifacts / "10-team.png"), full_page=True)
        # The other rooms, as the admin sees them (a screenshot each; their behaviour is TestClient-tested).
        for number, (label, name) in enumerate(
            (
                ("模板", "templates"),
                ("受众名单", "audiences"),
                ("通讯录", "directory"),
                ("报表", "reports"),
                ("订阅用户", "subscribers"),
                ("屏蔽名单", "suppressions"),
                ("机构设置", "settings"),
                ("审计日志", "audit"),
            ),
            start=11,
        ):
            page.click(f"nav.side >> text={label}")
            expect(page.locator("main h1")).to_contain_text(label)
            page.screenshot(path=str(artifacts / f"{number}-{name}.png"))
        expect(page.locator("#audit-table")).to_contain_text("创建账号")
    finally:
        context.close()
    assert time.monotonic() - started < 60
