"""Templates: versioned CRUD, preview with SMS parts, notices made from a template, agency SMS senders."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from channels.sandbox.runner import bind_loopback, run_in_thread
from govconnect.agencies.models import Agency
from govconnect.app import create_app
from govconnect.message_templates.models import NoticeTemplateUse
from govconnect.providers.sandbox import use_demo_sandbox
from govconnect.settings import Settings
from tests.factories import make_agency, make_key, make_subscriber
from tests.govconnect.notices.conftest import wait_for
from tests.govconnect.notices.fakes import ScriptedChannel
from tests.govconnect.notices.test_end_to_end import Gateway, wait_progress
from tests.govconnect.notices.test_notices_api import notice_body

FLOOD = {
    "name": "暴雨预警",
    "title": "((area))暴雨预警",
    "variants": {
        "sms": {
            "text": "((name))您好：((area))今夜有暴雨，请远离河道。",
            "aliyun_template_code": "SMS_2001",
            "aliyun_params": {"name": "((name))", "area": "((area))"},
        },
        "wechat": {"template_id": "tpl-flood", "fields": {"first": "((area))暴雨预警", "remark": "((name))请注意安全"}},
        "voice": {"text": "((area))今夜有暴雨", "tts_code": "TTS_3001", "tts_params": {"area": "((area))"}},
        "site": {"text": "((area))今夜有暴雨，请远离河道。"},
    },
}


def create(client: TestClient, auth: dict[str, str], body: dict[str, Any] = FLOOD) -> dict[str, Any]:
    r = client.post("/api/v1/templates", json=body, headers=auth)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_templates_are_versioned_and_scoped(
    app_client: TestClient, session: Session, agency: Agency, auth: dict[str, str]
) -> None:
    created = create(app_client, auth)
    tid = created["id"]
    assert created["version"] == 1 and created["placeholders"] == ["area", "name"]
    edited = app_client.patch(f"/api/v1/templates/{tid}", json={"title": "((area))暴雨红色预警"}, headers=auth)
    assert edited.status_code == 200 and edited.json()["version"] == 2
    assert edited.json()["variants"]["sms"]["aliyun_template_code"] == "SMS_2001"  # kept from version 1
    assert app_client.get(f"/api/v1/templates/{tid}", headers=auth).json()["title"] == "((area))暴雨红色预警"
    assert app_client.get(f"/api/v1/templates/{tid}?version=1", headers=auth).json()["title"] == "((area))暴雨预警"
    assert app_client.get(f"/api/v1/templates/{tid}?version=3", headers=auth).status_code == 404
    assert app_client.get("/api/v1/templates", headers=auth).json()["total"] == 1
    bad = app_client.post("/api/v1/templates", json={**FLOOD, "variants": {}}, headers=auth)
    assert bad.status_code == 422
    other = make_agency(session, code="qz-rsj", name="衢州市人社局")
    oh = {"Authorization": f"Bearer {make_key(session, other, ['notices:send', 'notices:read']).key}"}
    assert app_client.get(f"/api/v1/templates/{tid}", headers=oh).status_code == 404
    assert app_client.patch(f"/api/v1/templates/{tid}", json={"name": "x"}, headers=oh).status_code == 404
    assert app_client.post(f"/api/v1/templates/{tid}/preview", json={}, headers=oh).status_code == 404
    assert app_client.delete(f"/api/v1/templates/{tid}", headers=oh).status_code == 404
    from_other = app_client.post(
        "/api/v1/notices", json={**notice_body(), "title": "", "body": "", "template_id": tid}, headers=oh
    )
    assert from_other.status_code == 404
    assert app_client.delete(f"/api/v1/templates/{tid}", headers=auth).status_code == 204
    assert app_client.get(f"/api/v1/templates/{tid}", headers=auth).status_code == 404


def test_preview_renders_every_variant_with_sms_parts(
    app_client: TestClient, session: Session, agency: Agency, auth: dict[str, str]
) -> None:
    admin = {"Authorization": f"Bearer {make_key(session, agency, ['admin']).key}"}
    r = app_client.put("/api/v1/agencies/me/sender", json={"sms_sign_name": "衢州市应急管理局"}, headers=admin)
    assert r.status_code == 200 and r.json()["sms_sign_name"] == "衢州市应急管理局"
    assert app_client.put("/api/v1/agencies/me/sender", json={"sms_sign_name": "x"}, headers=auth).status_code == 403
    tid = create(app_client, auth)["id"]
    preview = app_client.post(f"/api/v1/templates/{tid}/preview", json={"values": {"area": "江山市"}}, headers=auth)
    assert preview.status_code == 200, preview.text
    variants = preview.json()["variants"]
    sms = variants["sms"]
    assert sms["text"] == "【衢州市应急管理局】【name】您好：江山市今夜有暴雨，请远离河道。回T退订"
    assert sms["parts"] == 1 and sms["missing"] == ["name"]
    assert sms["provider_params"] == {"name": "【name】", "area": "江山市"}
    assert variants["wechat"]["fields"] == {"first": "江山市暴雨预警", "remark": "【name】请注意安全"}
    assert variants["site"]["text"] == "江山市今夜有暴雨，请远离河道。"
    assert preview.json()["title"] == "江山市暴雨预警"
    long_text = {"name": "长通知", "title": "通知", "variants": {"sms": {"text": "请注意防范。" * 25}}}
    long_id = create(app_client, auth, long_text)["id"]
    long_sms = app_client.post(f"/api/v1/templates/{long_id}/preview", json={}, headers=auth).json()["variants"]["sms"]
    assert long_sms["length"] == 150 + len("【衢州市应急管理局】回T退订") and long_sms["parts"] == 3


def test_notice_from_template_sends_each_channel_its_variant(
    app_client: TestClient,
    session: Session,
    agency: Agency,
    auth: dict[str, str],
    fake_providers: dict[str, ScriptedChannel],
) -> None:
    make_subscriber(
        session, "13800000001", "oid-1", regions=["江山市"], name="张三", channels=["sms", "wechat", "voice"]
    )
    tid = create(app_client, auth)["id"]
    body = {**notice_body(channels=["sms", "wechat", "voice", "site"]), "title": "", "body": ""}
    body.update(template_id=tid, template_values={"area": "江山市"})
    r = app_client.post("/api/v1/notices", json=body, headers=auth)
    assert r.status_code == 202, r.text
    assert r.json()["title"] == "江山市暴雨预警" and r.json()["body"] == "江山市今夜有暴雨，请远离河道。"
    wait_for(
        lambda: (
            fake_providers["aliyun_sms"].sent
            and fake_providers["wechat_mp"].sent
            and fake_providers["aliyun_voice"].sent
        )
    )
    (sms,) = fake_providers["aliyun_sms"].sent
    assert sms.template_code == "SMS_2001" and sms.template_params == {"name": "张三", "area": "江山市"}
    assert sms.text == "张三您好：江山市今夜有暴雨，请远离河道。"
    (wechat,) = fake_providers["wechat_mp"].sent
    assert wechat.template_code == "tpl-flood" and wechat.template_params == {
        "first": "江山市暴雨预警",
        "remark": "张三请注意安全",
    }
    (voice,) = fake_providers["aliyun_voice"].sent
    assert voice.template_code == "TTS_3001" and voice.template_params == {"area": "江山市"}
    # Editing the template later does not change what this notice used.
    app_client.patch(f"/api/v1/templates/{tid}", json={"title": "改了"}, headers=auth)
    use = session.exec(select(NoticeTemplateUse)).one()
    assert (use.template_id, use.template_version, use.values) == (tid, 1, {"area": "江山市"})
    missing = {**body, "template_values": {}}
    r = app_client.post("/api/v1/notices", json=missing, headers=auth)
    assert r.status_code == 422 and r.json()["error"]["details"]["unknown"] == ["area"]
    both = app_client.post("/api/v1/notices", json={**body, "body": "自己写的"}, headers=auth)
    assert both.status_code == 422
    neither = app_client.post("/api/v1/notices", json={**notice_body(), "body": ""}, headers=auth)
    assert neither.status_code == 422


@pytest.fixture
def sandboxed(pipeline_settings: Settings, engine: Engine) -> Iterator[tuple[Gateway, Any]]:
    sock = bind_loopback()
    settings = use_demo_sandbox(pipeline_settings, "127.0.0.1", sock.getsockname()[1])
    settings = settings.model_copy(update={"sandbox": settings.sandbox.model_copy(update={"report_delay": 0.05})})
    app = create_app(settings, engine=engine)
    config = app.state.provider_sandbox.config
    # Like a real account: only approved signatures and registered templates are accepted.
    config.sms_sign_names = (settings.aliyun_sms.sign_name, "衢州市应急管理局")
    config.sms_templates = {**config.sms_templates, "SMS_2001": "${name}您好：${area}今夜有暴雨，请远离河道。"}
    server = run_in_thread(app, sock=sock)
    try:
        yield Gateway(server.url, server.url + settings.sandbox.mount_path, settings), config
    finally:
        server.stop()


def test_agency_signature_and_alibaba_template_reach_the_sandbox(
    sandboxed: tuple[Gateway, Any], session: Session, agency: Agency, auth: dict[str, str]
) -> None:
    gateway, _config = sandboxed
    make_subscriber(session, "13800000001", None, regions=["江山市"], name="张三", channels=["sms"])
    make_subscriber(session, "13800000002", None, regions=["江山市"], name="李四", channels=["sms"])
    other = make_agency(session, code="qz-sw", name="衢州市水利局")
    other_auth = {"Authorization": f"Bearer {make_key(session, other, ['notices:send', 'notices:read']).key}"}
    admin = {"Authorization": f"Bearer {make_key(session, agency, ['admin']).key}"}
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        assert client.put(
            "/api/v1/agencies/me/sender", json={"sms_sign_name": "衢州市应急管理局"}, headers=admin
        ).is_success
        tid = client.post("/api/v1/templates", json=FLOOD, headers=auth).json()["id"]
        body = {**notice_body(channels=["sms"]), "title": "", "body": "", "template_id": tid}
        body["template_values"] = {"area": "江山市"}
        first = client.post("/api/v1/notices", json=body, headers=auth).json()["id"]
        done = wait_progress(client, f"/api/v1/notices/{first}", auth, done=2)
        assert done["progress"]["sms"]["delivered"] == 2
        # An agency without its own sender keeps the settings' default signature, free-text template.
        plain = client.post(
            "/api/v1/notices", json=notice_body(channels=["sms"], body="水利局通知"), headers=other_auth
        )
        wait_progress(client, f"/api/v1/notices/{plain.json()['id']}", other_auth, done=2)
        inbox = client.get(f"{gateway.sandbox}/_sandbox/sms/inbox", params={"phone": "13800000001"}).json()
        texts = [m["text"] for m in inbox["messages"]]
        assert texts == ["【衢州市应急管理局】张三您好：江山市今夜有暴雨，请远离河道。", "【衢州发布】水利局通知"]
        sent = client.get(f"{gateway.sandbox}/_sandbox/messages", params={"provider": "aliyun_sms"}).json()["messages"]
        assert not [m for m in sent if m.get("error")]
        # The sandbox checks the template's variables: a version that maps too few fails permanently.
        lacking = {"variants": {"sms": {**FLOOD["variants"]["sms"], "aliyun_params": {"name": "((name))"}}}}  # type: ignore[dict-item]
        assert client.patch(f"/api/v1/templates/{tid}", json=lacking, headers=auth).status_code == 200
        broken = client.post("/api/v1/notices", json=body, headers=auth).json()["id"]
        failed = wait_progress(client, f"/api/v1/notices/{broken}", auth, done=2)
        assert failed["progress"]["sms"]["failed"] == 2
        deliveries = client.get(f"/api/v1/notices/{broken}/deliveries", headers=auth).json()["items"]
        assert {d["error_code"] for d in deliveries} == {"isv.TEMPLATE_MISSING_PARAMETERS"}
