"""Console admin rooms: API keys (shown once, revoked), team accounts, templates; admin only, own agency only."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from govconnect.agencies.models import ApiKey, StaffUser
from govconnect.agencies.service import create_api_key
from govconnect.audit.models import AuditEntry
from govconnect.message_templates.schemas import TemplateCreate
from govconnect.message_templates.service import create_template
from tests.govconnect.console.conftest import PASSWORD, console_csrf, console_sign_in, make_team, team_password_hash


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


def test_admin_creates_a_key_shown_once_that_works_until_revoked(client: TestClient, session: Session) -> None:
    agency = make_team(session)
    console_sign_in(client, _admin(session, agency.id or 0))
    assert "API 密钥" in client.get("/console/").text  # admins see the admin rooms in the nav
    token = console_csrf(client, "/console/keys")
    created = client.post("/console/keys", data={"csrf": token, "name": "值班系统", "scope": ["notices:read"]})
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    key = re.search(r'<p class="mono secret">(gck_[^<]+)</p>', created.text)
    assert key, created.text
    assert key.group(1) not in client.get("/console/keys").text  # shown once
    headers = {"Authorization": f"Bearer {key.group(1)}"}
    assert client.get("/api/v1/notices", headers=headers).status_code == 200
    record = session.exec(select(ApiKey)).one()
    assert record.scopes == ["notices:read"] and record.name == "值班系统"
    page = client.get(f"/console/keys/{record.id}")
    assert record.prefix in page.text and "吊销此密钥" in page.text
    revoked = client.post(f"/console/keys/{record.id}/revoke", data={"csrf": token})
    assert revoked.status_code == 200 and "已吊销" in revoked.text
    assert client.get("/api/v1/notices", headers=headers).status_code == 401
    actions = {e.action for e in session.exec(select(AuditEntry)).all()}
    assert {"key_create", "key_revoke"} <= actions
    no_scope = client.post("/console/keys", data={"csrf": token, "name": "x"})
    assert no_scope.status_code == 422 and "至少需要一个权限" in no_scope.text


def test_admin_adds_a_staff_account_who_can_sign_in(client: TestClient, session: Session) -> None:
    agency = make_team(session)
    console_sign_in(client, _admin(session, agency.id or 0))
    token = console_csrf(client, "/console/team")
    form = {"csrf": token, "username": "sunli", "display_name": "孙立", "role": "approver", "password": PASSWORD}
    added = client.post("/console/team", data=form)
    assert added.status_code == 200 and "已创建账号 sunli" in added.text
    again = client.post("/console/team", data=form)
    assert again.status_code == 409 and "用户名已存在" in again.text
    weak = client.post("/console/team", data={**form, "username": "zhouyi", "password": "short"})
    assert weak.status_code == 422
    member = session.exec(select(StaffUser).where(StaffUser.username == "sunli")).one()
    assert member.agency_id == agency.id and member.role == "approver"
    assert session.exec(select(AuditEntry).where(AuditEntry.action == "staff_create")).one().target_id == str(member.id)
    console_sign_in(client, "sunli")
    assert "待我审核" in client.get("/console/").text


def test_admin_rooms_are_for_admins_of_the_same_agency(client: TestClient, session: Session) -> None:
    agency = make_team(session)
    other = make_team(session, "qz-sw", "衢州市水利局")
    their_key = create_api_key(session, other, ["notices:read"], "水利")
    their_template, _v = create_template(
        session,
        other.id or 0,
        TemplateCreate.model_validate(
            {"name": "水利模板", "title": "水位", "variants": {"site": {"text": "水位正常"}}}
        ),
    )
    session.commit()
    console_sign_in(client, "wangli-qz-yjj")
    for path in ("/console/keys", "/console/team", f"/console/keys/{their_key.record.id}"):
        assert client.get(path).status_code == 403, path
    assert client.get(f"/console/templates/{their_template.id}").status_code == 404
    assert "水利模板" not in client.get("/console/templates").text
    console_sign_in(client, _admin(session, agency.id or 0))
    token = console_csrf(client, "/console/keys")
    assert client.get(f"/console/keys/{their_key.record.id}").status_code == 404
    assert client.post(f"/console/keys/{their_key.record.id}/revoke", data={"csrf": token}).status_code == 404
    session.refresh(their_key.record)
    assert their_key.record.revoked_at is None
    assert "wangli-qz-sw" not in client.get("/console/team").text


def test_templates_list_and_page_lead_to_compose(client: TestClient, session: Session) -> None:
    agency = make_team(session)
    template, _v = create_template(
        session,
        agency.id or 0,
        TemplateCreate.model_validate(
            {"name": "停水模板", "title": "停水通知", "variants": {"sms": {"text": "((name))您好：明日停水。"}}}
        ),
    )
    session.commit()
    console_sign_in(client, "wangli-qz-yjj")
    assert "停水模板" in client.get("/console/templates").text
    page = client.get(f"/console/templates/{template.id}")
    assert "明日停水" in page.text and f"/console/compose?template={template.id}" in page.text
    compose = client.get("/console/compose", params={"template": template.id}).text
    assert re.search(rf'<option value="{template.id}" selected>', compose)
