"""Console templates (create, edit into versions), audiences, subscribers and suppression, the directory."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from govconnect.audit.models import AuditEntry
from govconnect.message_templates.models import MessageTemplate, MessageTemplateVersion
from govconnect.message_templates.schemas import TemplateCreate
from govconnect.message_templates.service import create_template
from tests.govconnect.console.conftest import console_csrf, console_sign_in, make_team


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
