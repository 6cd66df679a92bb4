"""Alibaba's own SDKs against the sandbox: the current one signs v3 (ACS3-HMAC-SHA256), the legacy one v1.

The SDKs are test dependencies only (pyproject `test` extra): fair clients for the sandbox's fidelity.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from channels import aliyun_acs3
from channels.base import CHINA_TZ
from tests.channels.conftest import Sandbox

PHONE = "13800001111"


def today() -> str:
    return datetime.now(CHINA_TZ).strftime("%Y%m%d")


def tea_client(sandbox: Sandbox, secret: str | None = None) -> Any:
    dysms = pytest.importorskip("alibabacloud_dysmsapi20170525.client")
    openapi = pytest.importorskip("alibabacloud_tea_openapi.models")
    cfg = sandbox.state.config
    return dysms.Client(
        openapi.Config(
            access_key_id=cfg.aliyun_access_key_id,
            access_key_secret=secret or cfg.aliyun_access_key_secret,
            endpoint=sandbox.url.split("//", 1)[1],
            protocol="http",
        )
    )


def test_current_sdk_sends_and_queries_with_signature_v3(sandbox: Sandbox) -> None:
    models = pytest.importorskip("alibabacloud_dysmsapi20170525.models")
    client = tea_client(sandbox)
    params = json.dumps({"content": "暴雨预警 a+b*c ~"}, ensure_ascii=False)
    sent = client.send_sms(
        models.SendSmsRequest(
            phone_numbers=PHONE, sign_name="衢州发布", template_code="SMS_000000", template_param=params, out_id="v3-1"
        )
    )
    assert sent.status_code == 200 and sent.body.code == "OK" and sent.body.biz_id
    [message] = sandbox.state.messages("aliyun_sms", reference="v3-1")
    assert message.text == "【衢州发布】暴雨预警 a+b*c ~" and message.recipient == PHONE
    batch = client.send_batch_sms(
        models.SendBatchSmsRequest(
            phone_number_json=json.dumps([PHONE, "13800002222"]),
            sign_name_json=json.dumps(["衢州发布", "衢州发布"], ensure_ascii=False),
            template_code="SMS_000000",
            template_param_json=json.dumps([{"content": "一"}, {"content": "二"}], ensure_ascii=False),
        )
    )
    assert batch.body.code == "OK"
    query = models.QuerySendDetailsRequest(
        phone_number=PHONE, send_date=today(), page_size=10, current_page=1, biz_id=sent.body.biz_id
    )
    detail = client.query_send_details(query).body
    assert detail.code == "OK" and detail.total_count == 1
    [dto] = detail.sms_send_detail_dtos.sms_send_detail_dto
    assert (dto.phone_num, dto.out_id, dto.content) == (PHONE, "v3-1", "【衢州发布】暴雨预警 a+b*c ~")
    assert dto.send_status in (1, 3)  # waiting for the report, or delivered once the report delay passed
    everything = client.query_send_details(
        models.QuerySendDetailsRequest(phone_number=PHONE, send_date=today(), page_size=1, current_page=2)
    ).body
    assert everything.total_count == 2 and len(everything.sms_send_detail_dtos.sms_send_detail_dto) == 1


def test_current_sdk_wrong_secret_is_signature_does_not_match(sandbox: Sandbox) -> None:
    models = pytest.importorskip("alibabacloud_dysmsapi20170525.models")
    client = tea_client(sandbox, secret="not-the-secret")
    with pytest.raises(Exception) as caught:
        client.send_sms(models.SendSmsRequest(phone_numbers=PHONE, sign_name="衢州发布", template_code="SMS_000000"))
    error: Any = caught.value
    assert error.code == "SignatureDoesNotMatch" and error.status_code == 400
    server_string = error.message.split("server string to sign is:", 1)[1]
    assert server_string.startswith("ACS3-HMAC-SHA256\n") and len(server_string.split("\n")[1][:64]) == 64
    assert sandbox.state.messages("aliyun_sms")[0].error == "SignatureDoesNotMatch"


def legacy_request(sandbox: Sandbox) -> Any:
    core = pytest.importorskip("aliyunsdkcore.request")
    request = core.RpcRequest("Dysmsapi", "2017-05-25", "SendSms")
    request.set_endpoint(sandbox.url.split("//", 1)[1])
    request.set_protocol_type("http")
    request.set_method("POST")
    request.add_query_param("PhoneNumbers", PHONE)
    request.add_query_param("SignName", "衢州发布")
    request.add_query_param("TemplateCode", "SMS_000000")
    request.add_query_param("TemplateParam", json.dumps({"content": "停水 通知*~"}, ensure_ascii=False))
    return request


def test_legacy_sdk_signature_v1_and_its_wrong_secret_diagnosis(sandbox: Sandbox) -> None:
    acs = pytest.importorskip("aliyunsdkcore.client")
    exceptions = pytest.importorskip("aliyunsdkcore.acs_exception.exceptions")
    cfg = sandbox.state.config
    ok = acs.AcsClient(cfg.aliyun_access_key_id, cfg.aliyun_access_key_secret, "cn-hangzhou")
    assert json.loads(ok.do_action_with_exception(legacy_request(sandbox)))["Code"] == "OK"
    wrong = acs.AcsClient(cfg.aliyun_access_key_id, "not-the-secret", "cn-hangzhou")
    with pytest.raises(exceptions.ServerException) as caught:
        wrong.do_action_with_exception(legacy_request(sandbox))
    # The SDK compares its own string to sign with the one after the colon: equal means a wrong secret.
    assert (caught.value.get_error_code(), caught.value.get_http_status()) == ("InvalidAccessKeySecret", 400)


async def v3_post(
    sandbox: Sandbox, action: str, query: dict[str, str], *, secret: str | None = None, **options: Any
) -> httpx.Response:
    url = f"{sandbox.url}/dysmsapi/"
    cfg = sandbox.state.config
    headers = aliyun_acs3.signed_headers(
        "POST",
        url,
        action,
        query,
        b"",
        access_key_id=options.pop("access_key_id", cfg.aliyun_access_key_id),
        secret=secret or cfg.aliyun_access_key_secret,
        **options,
    )
    async with httpx.AsyncClient(timeout=5) as c:
        return await c.post(url, params=query, headers=headers)


async def test_v3_signature_checks_answer_alibaba_codes(sandbox: Sandbox) -> None:
    query = {
        "PhoneNumbers": PHONE,
        "SignName": "衢州发布",
        "TemplateCode": "SMS_000000",
        "TemplateParam": json.dumps({"content": "签名 v3 ~*"}, ensure_ascii=False),
        "OutId": "h-1",
    }
    r = await v3_post(sandbox, "SendSms", query, nonce="n-1")
    assert r.status_code == 200 and r.json()["Code"] == "OK"
    r = await v3_post(sandbox, "SendSms", query, nonce="n-1")
    assert r.status_code == 400 and r.json()["Code"] == "SignatureNonceUsed"
    r = await v3_post(sandbox, "SendSms", query, secret="wrong")
    body = r.json()
    assert r.status_code == 400 and body["Code"] == "SignatureDoesNotMatch"
    assert body["Message"].split("server string to sign is:")[1].startswith("ACS3-HMAC-SHA256\n")
    r = await v3_post(sandbox, "SendSms", query, access_key_id="nobody")
    assert r.status_code == 404 and r.json()["Code"] == "InvalidAccessKeyId.NotFound"
    stale = datetime.now(UTC) - timedelta(hours=1)
    r = await v3_post(sandbox, "SendSms", query, when=stale)
    assert r.status_code == 400 and r.json()["Code"] == "InvalidTimeStamp.Expired"
    # A parameter changed after signing (the query is part of the canonical request).
    async with httpx.AsyncClient(timeout=5) as c:
        url = f"{sandbox.url}/dysmsapi/"
        cfg = sandbox.state.config
        headers = aliyun_acs3.signed_headers(
            "POST", url, "SendSms", query, b"", access_key_id=cfg.aliyun_access_key_id, secret="sandbox-access-secret"
        )
        r = await c.post(url, params={**query, "PhoneNumbers": "13900000000"}, headers=headers)
        assert r.status_code == 400 and r.json()["Code"] == "SignatureDoesNotMatch"
        headers = aliyun_acs3.signed_headers(
            "POST", url, "SendSms", query, b"", access_key_id=cfg.aliyun_access_key_id, secret="sandbox-access-secret"
        )
        headers["Authorization"] = headers["Authorization"].replace("host;", "")
        r = await c.post(url, params=query, headers=headers)
        assert r.status_code == 400 and r.json()["Code"] == "IncompleteSignature"
        headers = aliyun_acs3.signed_headers(
            "POST", url, "Nope", query, b"", access_key_id=cfg.aliyun_access_key_id, secret="sandbox-access-secret"
        )
        r = await c.post(url, params=query, headers=headers)
        assert r.status_code == 404 and r.json()["Code"] == "InvalidAction.NotFound"
    assert len(sandbox.state.messages("aliyun_sms", reference="h-1")) == 7  # one accepted, six refused
