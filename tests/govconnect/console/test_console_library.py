"""Console templates (create, edit into versions), audiences, subscribers and suppression, the directory."""

from __future__ import annotations

import io
import re

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from contacts.models import Department
from govconnect.agencies.models import StaffUser
from govconnect.audiences.lists import import_audience_file
from govconnect.audiences.models import AudienceList
from govconnect.audit.models import AuditEntry
from govconnect.message_templates.models import MessageTemplate, MessageTemplateVersion
from govconnect.message_templates.schemas import TemplateCreate
from govconnect.message_templates.service import create_template
from govconnect.suppression.models import Suppression
from govconnect.suppression.service import suppress
from tests.factories import make_subscriber
from tests.govconnect.console.conftest import console_csrf, console_sign_in, make_team, team_password_hash


def _admin(session: Session, agency_id: int, username: str = "admin-qz-yjj") -> str:
    session.add(
        StaffUser(
            username=username,
            agency_id=agency_id,
            role="admin",
            password_hash=team_password_hash(),
            display_name="管理员",
        )
    )
    session.commit()
    return username


def test_drafter_creates_and_edits_a_template_into_versions(client: TestClient, session: Session) -> None:
    make_team(session)
    console_sign_in(client, "wangli-qz-yjj")
    token = console_csrf(client, "/console/templates/new")
    form = {"csrf": token, "name": "停水模板", "title": "((area))停水通知", "sms": "((area))明日停水。", "site": ""}
    created = client.post("/console/templates/new", data=form)
    assert created.status_code == 200 and "已保存为新版本" in created.text and "第 1 版" in created.text
    template = session.exec(select(MessageTemplate)).one()
    edited = client.post(
        f"/console/templates/{template.id}/edit",
        data={**form, "sms": "((area))明日8时起停水。", "site": "((area))明日停水，请储水。", "sms_code": "SMS_88"},
    )
    assert edited.status_code == 200 and "第 2 版" in edited.text and "请储水" in edited.text
    versions = session.exec(select(MessageTemplateVersion).order_by(MessageTemplateVersion.version)).all()  # type: ignore[arg-type]
    assert [v.version for v in versions] == [1, 2]
    sms = versions[1].variants["sms"]
    assert (sms["text"], sms["aliyun_template_code"]) == ("((area))明日8时起停水。", "SMS_88")
    assert set(versions[0].variants) == {"sms"} and versions[1].variants["site"]["text"] == "((area))明日停水，请储水。"
    assert versions[0].variants["sms"]["text"] == "((area))明日停水。"  # the old version is kept as it was
    old = client.get(f"/console/templates/{template.id}", params={"version": 1})
    assert "历史版本" in old.text and "请储水" not in old.text
    same = client.post(
        f"/console/templates/{template.id}/edit",
        data={**form, "sms": "((area))明日8时起停水。", "site": "((area))明日停水，请储水。", "sms_code": "SMS_88"},
    )
    assert "内容没有变化" in same.text
    empty = client.post(f"/console/templates/{template.id}/edit", data={**form, "sms": "", "site": ""})
    assert empty.status_code == 422 and "输入有误" in empty.text
    bad_code = client.post("/console/templates/new", data={**form, "sms_code": "代码"})
    assert bad_code.status_code == 422
    changes = [e.changes for e in session.exec(select(AuditEntry).where(AuditEntry.action == "template_change")).all()]
    assert [c["op"] for c in changes] == ["create", "update"] and changes[1]["version"] == [1, 2]


def test_templates_of_another_agency_cannot_be_edited(client: TestClient, session: Session) -> None:
    make_team(session)
    other = make_team(session, "qz-sw", "衢州市水利局")
    theirs, _v = create_template(
        session,
        other.id or 0,
        TemplateCreate.model_validate(
            {"name": "水利模板", "title": "水位", "variants": {"site": {"text": "水位正常"}}}
        ),
    )
    session.commit()
    console_sign_in(client, "wangli-qz-yjj")
    token = console_csrf(client)
    assert client.get(f"/console/templates/{theirs.id}/edit").status_code == 404
    posted = client.post(
        f"/console/templates/{theirs.id}/edit", data={"csrf": token, "name": "x", "title": "x", "site": "改了"}
    )
    assert posted.status_code == 404
    session.refresh(theirs)
    assert theirs.version == 1
    console_sign_in(client, "liuyang-qz-yjj")
    assert client.get("/console/templates/new").status_code == 403


AUDIENCE_CSV = "手机号,姓名\n13800001111,张三\n12345,李四\n13800002222,王五\n,赵六\n13800001111,张三\n"


def test_audience_lists_upload_with_row_report_open_and_delete(client: TestClient, session: Session) -> None:
    make_team(session)
    other = make_team(session, "qz-sw", "衢州市水利局")
    console_sign_in(client, "wangli-qz-yjj")
    token = console_csrf(client, "/console/audiences")
    files = {"audience_file": ("名单.csv", AUDIENCE_CSV.encode(), "text/csv")}
    uploaded = client.post("/console/audiences", data={"csrf": token, "name": "防汛联络人"}, files=files)
    assert uploaded.status_code == 200 and "接受 <b>2</b>" in uploaded.text and "拒绝 <b>2</b>" in uploaded.text
    assert "手机号无效" in uploaded.text and "缺少手机号" in uploaded.text and "合并重复 1" in uploaded.text
    saved = session.exec(select(AudienceList).where(AudienceList.agency_id != other.id)).one()
    page = client.get(f"/console/audiences/{saved.id}")
    assert page.status_code == 200 and re.search(r'<td class="num">3</td><td>手机号无效</td>', page.text)
    compose = client.get("/console/compose", params={"audience_list": saved.id}).text
    assert f'name="audience_list" value="{saved.id}" checked' in compose
    refused = client.post(
        "/console/audiences", data={"csrf": token}, files={"audience_file": ("a.csv", b"x\n1\n", "text/csv")}
    )
    assert refused.status_code == 422 and "手机号" in refused.text
    # Another agency's list: not found, not deleted.
    theirs, _report = import_audience_file(
        client.app.state.engine,
        other.id or 0,
        "水利名单",
        io.BytesIO(b"phone\n13900001111\n"),
        "w.csv",  # type: ignore[attr-defined]
    )
    assert "水利名单" not in client.get("/console/audiences").text
    assert client.get(f"/console/audiences/{theirs.id}").status_code == 404
    assert client.post(f"/console/audiences/{theirs.id}/delete", data={"csrf": token}).status_code == 404
    deleted = client.post(f"/console/audiences/{saved.id}/delete", data={"csrf": token})
    assert deleted.status_code == 200 and "名单已删除" in deleted.text
    session.expire_all()
    assert [row.name for row in session.exec(select(AudienceList)).all()] == ["水利名单"]
    console_sign_in(client, "liuyang-qz-yjj")
    assert client.get("/console/audiences").status_code == 403


def test_subscribers_masked_and_suppression_list_for_admins(client: TestClient, session: Session) -> None:
    agency = make_team(session)
    other = make_team(session, "qz-sw", "衢州市水利局")
    make_subscriber(session, "13812345678", categories=("yjyj",), regions=("江山市",))
    secret = client.app.state.settings.secret_key.get_secret_value()  # type: ignore[attr-defined]
    theirs, _new = suppress(session, secret, "13987654321", "operator", "水利局加的", other.id)
    session.commit()
    console_sign_in(client, "zhaomin-qz-yjj")
    for path in ("/console/subscribers", "/console/subscribers.csv", "/console/suppressions"):
        assert client.get(path).status_code == 403, path
    console_sign_in(client, _admin(session, agency.id or 0))
    page = client.get("/console/subscribers")
    assert page.status_code == 200 and "138****5678" in page.text and "13812345678" not in page.text
    exported = client.get("/console/subscribers.csv").text
    assert "138****5678" in exported and "13812345678" not in exported
    token = console_csrf(client, "/console/suppressions")
    added = client.post(
        "/console/suppressions", data={"csrf": token, "phone": "+86 138-0000-9999", "reason": "本人要求"}
    )
    assert added.status_code == 200 and "号码已加入屏蔽名单" in added.text and "138****9999" in added.text
    assert "13800009999" not in added.text
    again = client.post("/console/suppressions", data={"csrf": token, "phone": "13800009999"})
    assert "号码已在屏蔽名单中" in again.text
    assert client.post("/console/suppressions", data={"csrf": token, "phone": "12345"}).status_code == 422
    found = client.get("/console/suppressions", params={"phone": "13800009999"})
    assert "该号码在屏蔽名单中" in found.text and "共 1 个号码" in found.text
    assert "该号码不在屏蔽名单中" in client.get("/console/suppressions", params={"phone": "13800001234"}).text
    assert client.post(f"/console/suppressions/{theirs.id}/remove", data={"csrf": token}).status_code == 404
    ours = session.exec(select(Suppression).where(Suppression.agency_id == agency.id)).one()
    removed = client.post(f"/console/suppressions/{ours.id}/remove", data={"csrf": token})
    assert removed.status_code == 200 and "号码已移出屏蔽名单" in removed.text
    session.expire_all()
    assert [s.id for s in session.exec(select(Suppression)).all()] == [theirs.id]
    changes = [
        e.changes["op"] for e in session.exec(select(AuditEntry).where(AuditEntry.action == "suppression_change"))
    ]
    assert changes == ["add", "remove"]


CONTACTS_CSV = (
    "姓名,部门,职务,手机,公开范围\n"
    "周明,衢州市应急管理局/办公室,主任,13900001111,公开\n"
    "吴芳,衢州市应急管理局/办公室/文印室,科员,13900002222,内部\n"
    ",衢州市应急管理局/办公室,科员,13900003333,公开\n"
    "郑强,衢州市应急管理局/救援科,科长,13900004444,秘密\n"
    "钱进,衢州市应急管理局/救援科,科员,,公开\n"
)


def test_directory_tree_contacts_import_report_and_export(client: TestClient, session: Session) -> None:
    agency = make_team(session)
    console_sign_in(client, "wangli-qz-yjj")
    token = console_csrf(client, "/console/directory")
    files = {"contacts_file": ("通讯录.csv", CONTACTS_CSV.encode(), "text/csv")}
    assert client.post("/console/directory/import", data={"csrf": token}, files=files).status_code == 403
    assert client.get("/console/directory/export.csv").status_code == 403
    console_sign_in(client, _admin(session, agency.id or 0))
    token = console_csrf(client, "/console/directory")
    imported = client.post("/console/directory/import", data={"csrf": token}, files=files)
    assert imported.status_code == 200 and "新增 <b>3</b>" in imported.text and "失败 <b>2</b>" in imported.text
    assert re.search(r'<td class="num">4</td><td>[^<]*</td>', imported.text)  # the blank name, by its line
    assert re.search(r'<td class="num">5</td><td>[^<]*公开范围无效', imported.text)
    office = session.exec(select(Department).where(Department.path == "衢州市应急管理局/办公室")).one()
    assert re.search(
        rf'href="/console/directory\?department={office.id}"[^>]*>办公室 <span class="count">2</span>', imported.text
    )
    page = client.get("/console/directory", params={"department": office.id})
    assert "周明" in page.text and "吴芳" in page.text and "钱进" not in page.text and "共 2 人" in page.text
    assert "13900002222" in page.text  # console users are staff: staff-only contacts and mobiles are shown
    exported = client.get("/console/directory/export.csv").text
    assert exported.startswith("\ufeff姓名,部门") and "钱进" in exported and "郑强" not in exported
    again = client.post("/console/directory/import", data={"csrf": token}, files=files)
    assert "新增 <b>0</b>，更新 <b>3</b>" in again.text
    bad = client.post(
        "/console/directory/import", data={"csrf": token}, files={"contacts_file": ("a.txt", b"x", "text/plain")}
    )
    assert bad.status_code == 422
    no_header = client.post(
        "/console/directory/import", data={"csrf": token}, files={"contacts_file": ("a.csv", b"foo\n1\n", "text/csv")}
    )
    assert no_header.status_code == 422 and "表头需包含" in no_header.text
    imports = session.exec(select(AuditEntry).where(AuditEntry.target_type == "directory")).all()
    assert [(e.agency_id, e.changes["created"]) for e in imports] == [(agency.id, 3), (agency.id, 0)]
    console_sign_in(client, "liuyang-qz-yjj")
    assert client.get("/console/directory").status_code == 403
