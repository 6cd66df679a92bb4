"""Console compose (check, upload report, template, submit) and sign-off (queue, reject, edit, resubmit, approve)."""

from __future__ import annotations

import re
import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from contacts.models import Department
from govconnect.clock import CHINA_TZ, utcnow
from govconnect.governance.models import NoticeSchedule
from govconnect.message_templates.schemas import TemplateCreate
from govconnect.message_templates.service import create_template
from govconnect.notices.models import Notice
from govconnect.settings import Settings
from tests.govconnect.console.conftest import console_csrf, console_sign_in, make_team, require_sign_off
from tests.govconnect.publishing.conftest import SandboxHandle
from tests.govconnect.publishing.test_staff_directory import seed_directory

BAD_CSV = "手机号,姓名\n13800001111,张三\n12345,李四\n13800002222,王五\n,赵六\n13800003333,钱七\n"


def _department(session: Session, path: str) -> int:
    dept = session.exec(select(Department).where(Department.path == path)).one()
    return int(dept.id or 0)


def _compose(client: TestClient, action: str, files: dict | None = None, **fields: object) -> object:
    data: dict[str, object] = {"csrf": console_csrf(client, "/console/compose"), "action": action, "nonce": "n1"}
    data.update(fields)
    return client.post("/console/compose", data=data, files=files or {})


def test_check_counts_recipients_and_previews_each_channel_without_writing(
    client: TestClient, session: Session, settings: Settings
) -> None:
    make_team(session)
    seed_directory(session, settings)
    office = _department(session, "衢州市人民政府办公室")
    console_sign_in(client, "wangli-qz-yjj")
    form = client.get("/console/compose").text
    assert "衢州市人民政府办公室" in form and "1 人" in form  # the department picker counts its subtree
    page = _compose(
        client,
        "check",
        mode="text",
        title="会议通知",
        body="((name))您好：明天9点开会。",
        department=[str(office)],
        channel=["sms", "site"],
    )
    assert page.status_code == 200, page.text
    assert re.search(r"将发送给 <b>1</b> 人", page.text)
    assert "【" in page.text and "按 1 条计费" in page.text  # SMS with signature and part count
    assert "市民您好" in page.text  # the site shows a name placeholder as 市民
    assert session.exec(select(Notice)).all() == []


def test_upload_shows_the_row_report_and_keeps_the_list(client: TestClient, session: Session) -> None:
    make_team(session)
    console_sign_in(client, "wangli-qz-yjj")
    files = {"audience_file": ("名单.csv", BAD_CSV.encode(), "text/csv")}
    page = _compose(client, "check", files=files, mode="text", title="通知", body="((name))您好", channel=["sms"])
    assert page.status_code == 200, page.text
    assert "接受 <b>3</b>" in page.text and "拒绝 <b>2</b>" in page.text
    assert "手机号无效" in page.text and "缺少手机号" in page.text
    assert re.search(r"将发送给 <b>3</b> 人", page.text)
    assert re.search(r'name="audience_list" value="\d+" checked', page.text)


def test_compose_errors_are_said_on_the_form(client: TestClient, session: Session) -> None:
    make_team(session)
    console_sign_in(client, "wangli-qz-yjj")
    no_channel = _compose(client, "submit", mode="text", title="通知", body="正文")
    assert no_channel.status_code == 422 and "至少一个渠道" in no_channel.text
    nobody = _compose(client, "submit", mode="text", title="通知", body="正文", channel=["sms"])
    assert nobody.status_code == 422 and "受众为空" in nobody.text
    other_list = _compose(client, "check", mode="text", title="通知", body="正文", channel=["sms"], audience_list="999")
    assert other_list.status_code == 422 and "受众名单不存在" in other_list.text
    bad_file = _compose(
        client,
        "check",
        files={"audience_file": ("a.csv", b"name\nx\n", "text/csv")},
        mode="text",
        title="t",
        body="b",
        channel=["sms"],
    )
    assert bad_file.status_code == 422 and "手机号" in bad_file.text
    assert session.exec(select(Notice)).all() == []


def test_template_to_uploaded_list_reject_edit_resubmit_approve(
    client: TestClient, session: Session, sandbox: SandboxHandle
) -> None:
    agency = make_team(session)
    require_sign_off(session, agency)
    template, _version = create_template(
        session,
        agency.id or 0,
        TemplateCreate.model_validate(
            {
                "name": "防汛预警",
                "title": "防汛预警",
                "variants": {
                    "sms": {"text": "((name))您好：今夜有暴雨。"},
                    "site": {"text": "((name))您好：今夜有暴雨。"},
                },
            }
        ),
    )
    session.commit()
    console_sign_in(client, "wangli-qz-yjj")
    assert "防汛预警（第 1 版）" in client.get("/console/compose").text
    files = {"audience_file": ("名单.csv", BAD_CSV.encode(), "text/csv")}
    submitted = _compose(
        client,
        "submit",
        files=files,
        mode="template",
        template_id=str(template.id),
        channel=["sms", "site"],
        urgent="1",  # urgent: not held by quiet hours whatever time the test runs
    )
    assert submitted.status_code == 200 and "已提交" in submitted.text, submitted.text
    notice = session.exec(select(Notice)).one()
    assert notice.status == "pending_approval" and notice.title == "防汛预警" and notice.recipient_count == 3
    token = console_csrf(client)
    own = client.post(f"/console/notices/{notice.id}/approve", data={"csrf": token})
    assert own.status_code == 403  # an operator does not approve

    console_sign_in(client, "zhaomin-qz-yjj")
    queue = client.get("/console/approvals").text
    assert "防汛预警" in queue and "今夜有暴雨" in queue  # full preview in the queue
    token = console_csrf(client)
    assert client.post(f"/console/notices/{notice.id}/reject", data={"csrf": token}).status_code == 422
    rejected = client.post(f"/console/notices/{notice.id}/reject", data={"csrf": token, "reason": "请写明时间"})
    assert rejected.status_code == 200 and "退回原因：请写明时间" in rejected.text

    console_sign_in(client, "wangli-qz-yjj")
    token = console_csrf(client)
    edited = client.post(
        f"/console/notices/{notice.id}/edit",
        data={"csrf": token, "title": "防汛预警", "body": "((name))您好：今夜22时起有暴雨。"},
    )
    assert edited.status_code == 200 and "草稿" in edited.text
    resubmitted = client.post(f"/console/notices/{notice.id}/submit", data={"csrf": token})
    assert resubmitted.status_code == 200
    session.refresh(notice)
    assert notice.status == "pending_approval"

    console_sign_in(client, "zhaomin-qz-yjj")
    token = console_csrf(client)
    approved = client.post(f"/console/notices/{notice.id}/approve", data={"csrf": token})
    assert approved.status_code == 200 and "已审核通过" in approved.text
    session.refresh(notice)
    assert notice.status in ("approved", "sending", "completed")
    # The edited wording is what went out, not the template's first one.
    deadline = time.monotonic() + 20
    while not sandbox.sms_texts("13800001111") and time.monotonic() < deadline:
        time.sleep(0.2)
    [sms] = sandbox.sms_texts("13800001111")
    assert "张三您好：今夜22时起有暴雨。" in sms
    history = client.get("/console/approvals").text
    assert "请写明时间" in history and "通过" in history and "退回" in history


def test_an_approver_cannot_approve_their_own_notice(client: TestClient, session: Session) -> None:
    agency = make_team(session)
    require_sign_off(session, agency)
    console_sign_in(client, "zhaomin-qz-yjj")
    files = {"audience_file": ("名单.csv", BAD_CSV.encode(), "text/csv")}
    _compose(client, "submit", files=files, mode="text", title="自审", body="正文", channel=["sms"])
    notice = session.exec(select(Notice)).one()
    assert "您起草的通知" in client.get("/console/approvals").text
    refused = client.post(f"/console/notices/{notice.id}/approve", data={"csrf": console_csrf(client)})
    assert refused.status_code == 403 and "起草人不能审核自己的通知" in refused.text


def test_repeat_creates_a_schedule_and_its_first_notice(client: TestClient, session: Session) -> None:
    make_team(session)
    console_sign_in(client, "wangli-qz-yjj")
    first = (utcnow() + timedelta(minutes=30)).astimezone(CHINA_TZ)
    fields = {"mode": "text", "title": "每周安全提示", "body": "注意用电安全。", "channel": ["site"]}
    bad_end = _compose(client, "submit", when="repeat", send_at=first.strftime("%Y-%m-%dT%H:%M"), ends_on="x", **fields)
    assert bad_end.status_code == 422 and "结束日期格式有误" in bad_end.text
    no_start = _compose(client, "submit", when="repeat", rule="weekly", ends_on=str(first.date()), **fields)
    assert no_start.status_code == 422 and "发送时间或结束日期格式有误" in no_start.text
    no_time = _compose(client, "submit", when="at", **fields)  # 定时 without a time is not "now"
    assert no_time.status_code == 422
    made = _compose(
        client,
        "submit",
        when="repeat",
        rule="weekly",
        send_at=first.strftime("%Y-%m-%dT%H:%M"),
        ends_on=str(first.date() + timedelta(days=21)),
        **fields,
    )
    assert made.status_code == 200 and "已创建重复发送" in made.text
    schedule = session.exec(select(NoticeSchedule)).one()
    assert schedule.rule == "weekly" and schedule.created_by.startswith("staff:")
    assert "每周安全提示" in made.text  # its first occurrence is within the lead time: already a notice
