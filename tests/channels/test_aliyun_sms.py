"""Alibaba Cloud SMS adapter against the sandbox over loopback HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from channels import aliyun_rpc
from channels.aliyun_sms import AliyunSms, group_id, parse_sms_report, parse_sms_up
from channels.base import MessageKind, OutboundMessage, Outcome
from channels.sms_text import is_unsubscribe
from tests.channels.conftest import Sandbox, sms_config

PHONE = "13800138001"


def msg(ref: str, phone: str = PHONE, text: str = "明日有暴雨，请注意防范。", **kw: object) -> OutboundMessage:
    return OutboundMessage(reference=ref, recipient=phone, text=text, **kw)  # type: ignore[arg-type]


def test_signature_v1_matches_the_documented_example() -> None:
    params = {
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }
    assert aliyun_rpc.sign("testsecret", "GET", params) == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    assert aliyun_rpc.percent_encode("a b*c~d/中") == "a%20b%2Ac~d%2F%E4%B8%AD"


async def test_single_message_accepted_with_reference_as_out_id(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    sms = AliyunSms(sms_config(sandbox), client)
    [result] = await sms.send([msg("dlv-1")])
    assert result.outcome is Outcome.ACCEPTED and result.provider_id and result.provider_id.endswith("^0")
    assert result.parts == 1
    found = await sandbox.get("/_sandbox/messages", provider="aliyun_sms", reference="dlv-1")
    assert found["count"] == 1 and found["messages"][0]["recipient"] == PHONE
    inbox = await sandbox.get("/_sandbox/sms/inbox", phone=PHONE)
    assert [m["text"] for m in inbox["messages"]] == ["【衢州发布】明日有暴雨，请注意防范。回T退订"]
    # Resending the same reference shows up as a duplicate.
    await sms.send([msg("dlv-1")])
    counts = await sandbox.get("/_sandbox/counts")
    assert counts["duplicates"]["aliyun_sms"] == {"dlv-1": 2}


async def test_same_text_many_numbers_is_one_send_sms(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    sms = AliyunSms(sms_config(sandbox), client)
    messages = [msg(f"d{i}", f"1380013{i:04d}", kind=MessageKind.STAFF) for i in range(1, 251)]
    results = await sms.send(messages)
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    assert len({r.provider_id for r in results}) == 1
    found = await sandbox.get("/_sandbox/messages", provider="aliyun_sms")
    assert found["count"] == 250 and {m["action"] for m in found["messages"]} == {"SendSms"}
    assert found["messages"][0]["reference"] == group_id([m.reference for m in messages])
    assert (await sandbox.get("/_sandbox/counts"))["requests"]["aliyun_sms"] == 1


async def test_different_texts_use_send_batch_sms_in_chunks_of_100(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    sms = AliyunSms(sms_config(sandbox), client)
    messages = [msg(f"b{i}", f"1390013{i:04d}", text=f"您的验证码是{i:06d}") for i in range(150)]
    results = await sms.send(messages)
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    found = await sandbox.get("/_sandbox/messages", provider="aliyun_sms")
    assert {m["action"] for m in found["messages"]} == {"SendBatchSms"}
    assert (await sandbox.get("/_sandbox/counts"))["requests"]["aliyun_sms"] == 2
    inbox = await sandbox.get("/_sandbox/sms/inbox", phone="13900130007")
    assert "您的验证码是000007" in inbox["messages"][0]["text"]


async def test_invalid_number_is_permanent_without_a_request(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    sms = AliyunSms(sms_config(sandbox), client)
    bad, good = await sms.send([msg("x1", "12345"), msg("x2")])
    assert (bad.outcome, bad.code) == (Outcome.PERMANENT, "isv.MOBILE_NUMBER_ILLEGAL")
    assert good.outcome is Outcome.ACCEPTED


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"access_key_secret": "wrong-secret"}, "SignatureDoesNotMatch"),
        ({"access_key_id": "no-such-key"}, "InvalidAccessKeyId.NotFound"),
        ({"template_code": "TPL_BAD"}, "isv.SMS_TEMPLATE_ILLEGAL"),
    ],
)
async def test_rejected_requests_are_permanent(
    sandbox: Sandbox, client: httpx.AsyncClient, overrides: dict[str, str], code: str
) -> None:
    [result] = await AliyunSms(sms_config(sandbox, **overrides), client).send([msg("p1")])
    assert (result.outcome, result.code) == (Outcome.PERMANENT, code)
    assert (await sandbox.get("/_sandbox/counts"))["accepted"] == {}


async def test_replayed_nonce_and_stale_timestamp_are_refused(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    cfg = sandbox.state.config
    base = {
        "PhoneNumbers": PHONE,
        "SignName": "衢州发布",
        "TemplateCode": "SMS_000000",
        "TemplateParam": '{"content": "x"}',
    }
    signed = aliyun_rpc.signed_params(
        "SendSms", base, access_key_id=cfg.aliyun_access_key_id, secret=cfg.aliyun_access_key_secret
    )
    first = await client.post(f"{sandbox.url}/dysmsapi/", data=signed)
    again = await client.post(f"{sandbox.url}/dysmsapi/", data=signed)
    assert first.json()["Code"] == "OK"
    assert again.json()["Code"] == "SignatureNonceUsed"
    old = aliyun_rpc.signed_params(
        "SendSms",
        base,
        access_key_id=cfg.aliyun_access_key_id,
        secret=cfg.aliyun_access_key_secret,
        timestamp=datetime(2020, 1, 1, tzinfo=UTC),
    )
    assert (await client.post(f"{sandbox.url}/dysmsapi/", data=old)).json()["Code"] == "InvalidTimeStamp.Expired"
    # GET with the signature over GET works too (older SDKs).
    get = aliyun_rpc.signed_params(
        "SendSms", base, access_key_id=cfg.aliyun_access_key_id, secret=cfg.aliyun_access_key_secret, method="GET"
    )
    assert (await client.get(f"{sandbox.url}/dysmsapi/", params=get)).json()["Code"] == "OK"


@pytest.mark.parametrize(
    ("fault", "outcome", "code", "retry_after"),
    [
        ({"kind": "error", "code": "isv.BUSINESS_LIMIT_CONTROL"}, Outcome.RETRYABLE, "isv.BUSINESS_LIMIT_CONTROL", 60),
        ({"kind": "error", "code": "Throttling.User"}, Outcome.RETRYABLE, "Throttling.User", None),
        ({"kind": "error", "code": "isv.MOBILE_NUMBER_ILLEGAL"}, Outcome.PERMANENT, "isv.MOBILE_NUMBER_ILLEGAL", None),
        ({"kind": "error", "code": "isv.SMS_TEMPLATE_ILLEGAL"}, Outcome.PERMANENT, "isv.SMS_TEMPLATE_ILLEGAL", None),
        ({"kind": "error", "code": "isv.AMOUNT_NOT_ENOUGH"}, Outcome.RETRYABLE, "isv.AMOUNT_NOT_ENOUGH", 600),
        ({"kind": "rate_limit", "retry_after": 7}, Outcome.RETRYABLE, "http_429", 7),
        ({"kind": "http_5xx", "status": 502}, Outcome.RETRYABLE, "http_502", None),
        ({"kind": "timeout", "seconds": 3}, Outcome.RETRYABLE, "timeout", None),
    ],
)
async def test_injected_faults_are_classified(
    sandbox: Sandbox,
    client: httpx.AsyncClient,
    fault: dict[str, object],
    outcome: Outcome,
    code: str,
    retry_after: float | None,
) -> None:
    await sandbox.fault("aliyun_sms", count=1, **fault)  # type: ignore[arg-type]
    sms = AliyunSms(sms_config(sandbox), client)
    [result] = await sms.send([msg("f1")])
    assert (result.outcome, result.code, result.retry_after) == (outcome, code, retry_after)
    [after] = await sms.send([msg("f2")])  # the fault was for one request only
    assert after.outcome is Outcome.ACCEPTED


async def test_latency_fault_still_accepts(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    await sandbox.fault("aliyun_sms", "latency", latency_ms=150)
    [result] = await AliyunSms(sms_config(sandbox), client).send([msg("l1")])
    assert result.outcome is Outcome.ACCEPTED


async def test_reports_are_pushed_and_parsed(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    sms = AliyunSms(sms_config(sandbox), client)
    [ok] = await sms.send([msg("r1")])
    [failed] = await sms.send([msg("r2", "13800000000")])  # the sandbox fails numbers ending 0000
    pushes = await sandbox.receiver.wait_for("/callbacks/aliyun_sms/report", 2)
    receipts = {r.reference: r for p in pushes for r in parse_sms_report(p["body"])}
    assert receipts["r1"].delivered and receipts["r1"].provider_id == ok.provider_id
    assert receipts["r1"].code == "DELIVERED" and receipts["r1"].occurred_at is not None
    assert not receipts["r2"].delivered and receipts["r2"].code == "MK:0001"
    assert failed.outcome is Outcome.ACCEPTED


async def test_group_report_matches_by_biz_id_and_phone(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    results = await AliyunSms(sms_config(sandbox), client).send([msg("g1", "13800000011"), msg("g2", "13800000012")])
    [push] = await sandbox.receiver.wait_for("/callbacks/aliyun_sms/report")
    receipts = parse_sms_report(push["body"])
    assert {(r.reference, r.provider_id, r.recipient) for r in receipts} == {
        (None, results[0].provider_id, "13800000011"),
        (None, results[0].provider_id, "13800000012"),
    }


async def test_duplicate_reports_and_push_retry(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    await sandbox.fault("aliyun_sms", "duplicate_reports", count=1)
    sandbox.receiver.fail_next = 1  # the gateway fails once; the sandbox pushes again
    await AliyunSms(sms_config(sandbox), client).send([msg("dup1")])
    pushes = await sandbox.receiver.wait_for("/callbacks/aliyun_sms/report", 2)
    assert [parse_sms_report(p["body"])[0].reference for p in pushes] == ["dup1", "dup1"]
    log = await sandbox.get("/_sandbox/pushes")
    assert sorted(p["attempts"] for p in log["pushes"]) == [1, 2]


async def test_fail_reports_fault(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    await sandbox.fault("aliyun_sms", "fail_reports", count=1)
    await AliyunSms(sms_config(sandbox), client).send([msg("fr1")])
    [push] = await sandbox.receiver.wait_for("/callbacks/aliyun_sms/report")
    assert parse_sms_report(push["body"])[0].delivered is False


async def test_phone_reply_pushes_sms_up(sandbox: Sandbox) -> None:
    r = await sandbox.post("/_sandbox/sms/reply", {"phone": PHONE, "content": "TD", "wait": True})
    assert r.status_code == 200 and r.json()["status"] == 200
    [push] = sandbox.receiver.on("/callbacks/aliyun_sms/up")
    [reply] = parse_sms_up(push["body"])
    assert reply.sender == PHONE and is_unsubscribe(reply.text) and reply.extra["dest_code"] == "1234"


def test_parsers_reject_malformed_payloads() -> None:
    for bad in (b"not json", b'{"x": 1}', b"[1, 2]", json.dumps([{"success": True}])):
        with pytest.raises(ValueError):
            parse_sms_report(bad)
    with pytest.raises(ValueError):
        parse_sms_up(b'[{"content": "TD"}]')
    [receipt] = parse_sms_report(
        b'[{"phone_number":"13800138001","success":"true","biz_id":"1^0","out_id":"d1",'
        b'"report_time":"2024-05-01 08:00:00"}]'
    )
    assert receipt.delivered and receipt.occurred_at is not None and receipt.occurred_at.utcoffset() is not None


async def test_each_message_carries_its_agency_signature_and_template(
    sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    sms = AliyunSms(sms_config(sandbox), client)
    messages = [
        msg("own-1", "13800138011", text="张三您好", sign_name="衢州市应急管理局", template_code="SMS_000000"),
        msg("own-2", "13800138012", text="李四您好", sign_name="衢州市应急管理局", template_code="SMS_000000"),
        msg("default", "13800138013", text="通知"),
        msg("tpl", "13800138014", text="x", template_code="SMS_2002", template_params={"area": "江山市"}),
    ]
    results = await sms.send(messages)
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    texts = {}
    for phone in ("13800138011", "13800138012", "13800138013", "13800138014"):
        inbox = await sandbox.get("/_sandbox/sms/inbox", phone=phone)
        texts[phone] = inbox["messages"][0]["text"]
    assert texts["13800138011"] == "【衢州市应急管理局】张三您好回T退订"
    assert texts["13800138012"] == "【衢州市应急管理局】李四您好回T退订"
    assert texts["13800138013"] == "【衢州发布】通知回T退订"
    assert texts["13800138014"] == "【衢州发布】江山市"  # a registered template: its variables, not the text
    found = await sandbox.get("/_sandbox/messages", provider="aliyun_sms")
    actions = sorted({m["action"] for m in found["messages"]})
    assert actions == ["SendBatchSms", "SendSms"]


async def test_query_send_details_pages_and_settles_a_dropped_report(
    sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    import asyncio

    from channels.base import CHINA_TZ

    sms = AliyunSms(sms_config(sandbox), client)
    await sandbox.fault("aliyun_sms", "drop_reports", count=1)
    [dropped] = await sms.send([msg("q1")])
    day = datetime.now(CHINA_TZ).strftime("%Y%m%d")
    [waiting] = await sms.query_send_details(PHONE, day, str(dropped.provider_id))
    assert waiting.status in (1, 3) and waiting.out_id == "q1"
    await asyncio.sleep(0.1)  # past the report delay: Alibaba has the carrier's answer
    [settled] = await sms.query_send_details(PHONE, day, str(dropped.provider_id))
    receipt = settled.receipt("q1", str(dropped.provider_id))
    assert receipt is not None and receipt.delivered and receipt.code == "DELIVERED"
    assert sandbox.receiver.on("/callbacks/aliyun_sms/report") == []  # the push itself never came
    # 60 more messages to the same number that day: every page is read (PageSize 50).
    await sms.send([msg(f"p{i}", text=f"第{i}条") for i in range(60)])
    asked: list[int] = []

    async def acquire() -> bool:
        asked.append(1)
        return True

    everything = await sms.query_send_details(PHONE, day, acquire=acquire)
    assert len(everything) == 61 and len(asked) == 2
    failing = await sms.query_send_details("13800000000", day)
    assert failing == []  # nothing sent to it: an empty page, not an error


async def test_query_send_details_errors(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    from channels.base import PermanentError, RetryableError

    sms = AliyunSms(sms_config(sandbox), client)
    with pytest.raises(PermanentError) as bad_date:
        await sms.query_send_details(PHONE, "20200101")  # older than 30 days
    assert bad_date.value.code == "isv.INVALID_PARAMETERS"
    with pytest.raises(PermanentError) as bad_phone:
        await sms.query_send_details("12345", "20200101")
    assert bad_phone.value.code == "isv.MOBILE_NUMBER_ILLEGAL"
    await sandbox.fault("aliyun_sms", "rate_limit", target="status", count=1)
    with pytest.raises(RetryableError):
        await sms.query_send_details(PHONE, datetime.now(UTC).strftime("%Y%m%d"))

    async def refuse() -> bool:
        return False

    with pytest.raises(RetryableError) as limited:
        await sms.query_send_details(PHONE, datetime.now(UTC).strftime("%Y%m%d"), acquire=refuse)
    assert limited.value.code == "rate_limited"
    # Raw requests: PageSize over 50 and a missing PhoneNumber answer Alibaba's codes.
    cfg = sandbox.state.config
    for params, code in (
        (
            {"PhoneNumber": PHONE, "SendDate": "20261201", "PageSize": "51", "CurrentPage": "1"},
            "isv.INVALID_PARAMETERS",
        ),
        ({"SendDate": "20261201", "PageSize": "10", "CurrentPage": "1"}, "MissingPhoneNumber"),
    ):
        signed = aliyun_rpc.signed_params(
            "QuerySendDetails", params, access_key_id=cfg.aliyun_access_key_id, secret=cfg.aliyun_access_key_secret
        )
        r = await client.post(f"{sandbox.url}/dysmsapi/", data=signed)
        assert r.json()["Code"] == code
