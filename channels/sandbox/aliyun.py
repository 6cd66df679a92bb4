"""Alibaba Cloud SMS and voice RPC endpoints: signatures v1 and v3 checked, real error codes answered.

An RPC request is signed either the legacy way (signature v1: `Action`, `Signature` ... in the
query or form, HMAC-SHA1; `aliyun-python-sdk-core` and our adapters) or the current way
(signature v3: `Authorization: ACS3-HMAC-SHA256 ...`, the action in `x-acs-action`;
`alibabacloud-dysmsapi20170525` and the other Tea SDKs). A wrong secret answers HTTP 400
`SignatureDoesNotMatch` with the server's string to sign after `server string to sign is:`,
as Alibaba does: the legacy SDK splits the message on that colon to tell a wrong secret.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from channels import aliyun_acs3, aliyun_rpc
from channels.base import CHINA_TZ
from channels.sandbox.faults import apply_fault
from channels.sandbox.state import Fault, SandboxState

MOBILE = re.compile(r"^(?:\+?86|0086)?1[3-9]\d{9}$")
PHONE = re.compile(r"^\d{7,13}$")
VAR = re.compile(r"\$\{(\w+)\}")
SIGNATURE_MISMATCH = "Specified signature is not matched with our calculation. server string to sign is:"
COMMON_REQUIRED = (
    "AccessKeyId",
    "Action",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "Signature",
    "Timestamp",
    "Version",
)


class AliyunError(Exception):
    """An error answer: code, message, HTTP status."""

    def __init__(self, code: str, message: str, status: int = 200) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.status = status


def answer(body: dict[str, Any], status: int = 200) -> JSONResponse:
    """An Alibaba Cloud JSON answer with a RequestId."""
    return JSONResponse({"RequestId": str(uuid.uuid4()).upper(), **body}, status_code=status)


def error_answer(code: str, message: str, status: int = 200) -> JSONResponse:
    """An error answer as Alibaba Cloud shapes it."""
    return answer({"Code": code, "Message": message, "Recommend": "", "HostId": "sandbox"}, status)


_CHINA_SECOND: list[Any] = [None, ""]  # the second last formatted, and its text


def china_now() -> str:
    """Beijing time as the reports print it (formatted once a second: a batch has 100 reports)."""
    second = int(time.time())
    if _CHINA_SECOND[0] != second:
        _CHINA_SECOND[:] = [second, datetime.fromtimestamp(second, CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")]
    return str(_CHINA_SECOND[1])


async def read_params(request: Request) -> dict[str, str]:
    """Query parameters merged with a form body (the SDKs use either)."""
    await request.body()  # kept: signature v3 hashes the raw body after the form is parsed
    params = dict(request.query_params)
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        params.update({k: str(v) for k, v in form.items()})
    return params


def check_timestamp(state: SandboxState, value: str) -> None:
    """`Timestamp` / `x-acs-date` (ISO 8601 UTC) within the allowed skew."""
    try:
        when = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise AliyunError("InvalidTimeStamp.Format", "Specified time stamp is not valid.", 400) from exc
    if abs(time.time() - when.timestamp()) > state.config.timestamp_skew:
        raise AliyunError("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.", 400)


def use_nonce(state: SandboxState, nonce: str) -> None:
    """Refuse a nonce seen within the timestamp window (forgetting older ones)."""
    now = time.time()
    if len(state.nonces) > 100_000:
        state.nonces = {n: t for n, t in state.nonces.items() if now - t < state.config.timestamp_skew}
    if nonce in state.nonces:
        raise AliyunError("SignatureNonceUsed", "Specified signature nonce was used already.", 400)
    state.nonces[nonce] = now


def authenticate(state: SandboxState, method: str, params: dict[str, str]) -> None:
    """Signature v1: required common parameters, key, timestamp, nonce and signature like the real API."""
    for name in COMMON_REQUIRED:
        if not params.get(name):
            raise AliyunError(f"Missing{name}", f"{name} is mandatory for this action.", 400)
    if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
        raise AliyunError("InvalidSignatureMethod", "Specified signature method is not supported.", 400)
    if params["AccessKeyId"] != state.config.aliyun_access_key_id:
        raise AliyunError("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
    check_timestamp(state, params["Timestamp"])
    if not aliyun_rpc.verify(state.config.aliyun_access_key_secret, method, params):
        server_string = aliyun_rpc.string_to_sign(method, params)
        raise AliyunError("SignatureDoesNotMatch", SIGNATURE_MISMATCH + server_string, 400)
    use_nonce(state, params["SignatureNonce"])


async def authenticate_v3(state: SandboxState, request: Request) -> None:
    """Signature v3 (ACS3-HMAC-SHA256): the canonical request rebuilt from what arrived, then compared."""
    auth = aliyun_acs3.parse_authorization(request.headers.get("authorization", ""))
    if auth is None:
        raise AliyunError("IncompleteSignature", "The request signature does not conform to Aliyun standards.", 400)
    if auth.algorithm != aliyun_acs3.ALGORITHM:
        raise AliyunError("InvalidSignatureMethod", "Specified signature method is not supported.", 400)
    headers = {k.lower(): v for k, v in request.headers.items()}
    for name in aliyun_acs3.REQUIRED_SIGNED:
        if name not in auth.signed_headers or not headers.get(name):
            raise AliyunError("IncompleteSignature", f"The request signature must cover the header {name}.", 400)
    if auth.access_key_id != state.config.aliyun_access_key_id:
        raise AliyunError("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
    check_timestamp(state, headers["x-acs-date"])
    body = await request.body()
    # The payload hash is the server's own: a body that does not match x-acs-content-sha256 fails here too.
    canonical = aliyun_acs3.canonical_request(
        request.method,
        request.url.path,
        dict(request.query_params),
        headers,
        auth.signed_headers,
        aliyun_acs3.sha256_hex(body),
    )
    server_string = aliyun_acs3.string_to_sign(canonical)
    expected = aliyun_acs3.signature(state.config.aliyun_access_key_secret, server_string)
    if not secrets.compare_digest(expected, auth.signature.lower()):
        raise AliyunError("SignatureDoesNotMatch", SIGNATURE_MISMATCH + server_string, 400)
    use_nonce(state, headers["x-acs-signature-nonce"])


def fault_error(provider: str) -> Any:
    """Provider-shaped error for an injected fault."""

    def build(fault: Fault, status: int) -> Response:
        if status == 429:
            return error_answer("Throttling.User", "Request was denied due to user flow control.", 429)
        default = "isv.BUSINESS_LIMIT_CONTROL"
        return error_answer(str(fault.code or default), "sandbox injected error", 200)

    return build


def require(params: dict[str, str], *names: str) -> None:
    """Action parameters the API needs."""
    for name in names:
        if not params.get(name):
            raise AliyunError(f"Missing{name}", f"{name} is mandatory for this action.", 400)


def render_sms(state: SandboxState, sign: str, template: str, raw_params: str) -> str:
    """The text a phone shows, or the error the API answers for this signature/template/params."""
    if state.config.sms_sign_names and sign not in state.config.sms_sign_names:
        raise AliyunError("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
    text = state.config.sms_templates.get(template)
    if text is None and not re.fullmatch(r"SMS_\d+", template):
        raise AliyunError("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
    try:
        params = json.loads(raw_params) if raw_params else {}
    except ValueError as exc:
        raise AliyunError("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值") from exc
    if not isinstance(params, dict) or not all(isinstance(v, str | int | float) for v in params.values()):
        raise AliyunError("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
    if text is None:
        body = "".join(str(v) for v in params.values())
    else:
        missing = [name for name in VAR.findall(text) if name not in params]
        if missing:
            raise AliyunError("isv.TEMPLATE_MISSING_PARAMETERS", "模板缺少变量")
        body = VAR.sub(lambda m: str(params[m.group(1)]), text)
    return f"【{sign}】{body}"


def sms_report(state: SandboxState, phone: str, biz_id: str, out_id: str, text: str, failed: bool) -> dict[str, Any]:
    """One SmsReport item."""
    ok = not failed and not phone.endswith(state.config.undeliverable_suffix)
    return {
        "phone_number": phone,
        "send_time": china_now(),
        "report_time": china_now(),
        "success": ok,
        "err_code": "DELIVERED" if ok else "MK:0001",
        "err_msg": "用户接收成功" if ok else "用户不可达 / unreachable",
        "sms_size": str(-(-len(text) // 67) if len(text) > 70 else 1),
        "biz_id": biz_id,
        "out_id": out_id,
    }


def send_sms(state: SandboxState, params: dict[str, str]) -> JSONResponse:
    """SendSms: one text to ≤ 1000 numbers."""
    require(params, "PhoneNumbers", "SignName", "TemplateCode")
    phones = [p.strip() for p in params["PhoneNumbers"].split(",") if p.strip()]
    if len(phones) > 1000:
        raise AliyunError("isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制")
    if not all(MOBILE.match(p) for p in phones):
        raise AliyunError("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
    text = render_sms(state, params["SignName"], params["TemplateCode"], params.get("TemplateParam", ""))
    out_id = params.get("OutId", "")
    biz_id = f"{state.next_provider_id()}^0"
    fail = state.take_fault("aliyun_sms", "send", ("fail_reports",)) is not None
    reports = []
    for phone in phones:
        state.record("aliyun_sms", "SendSms", reference=out_id or None, recipient=phone, text=text, provider_id=biz_id)
        reports.append(sms_report(state, phone, biz_id, out_id, text, fail))
    remember_details(state, params["TemplateCode"], [text] * len(phones), reports)
    schedule_reports(state, "aliyun_sms", "sms_report", reports)
    return answer({"Code": "OK", "Message": "OK", "BizId": biz_id})


def send_batch_sms(state: SandboxState, params: dict[str, str]) -> JSONResponse:
    """SendBatchSms: per-number signature and params, ≤ 100 numbers."""
    require(params, "PhoneNumberJson", "SignNameJson", "TemplateCode")
    try:
        phones = json.loads(params["PhoneNumberJson"])
        signs = json.loads(params["SignNameJson"])
        values = json.loads(params.get("TemplateParamJson") or "null")
    except ValueError as exc:
        raise AliyunError("isv.INVALID_JSON_PARAM", "JSON参数不合法") from exc
    if not isinstance(phones, list) or not isinstance(signs, list) or len(phones) != len(signs):
        raise AliyunError("isv.INVALID_PARAMETERS", "手机号码与签名数量不一致")
    if values is not None and (not isinstance(values, list) or len(values) != len(phones)):
        raise AliyunError("isv.INVALID_PARAMETERS", "模板变量与手机号码数量不一致")
    if len(phones) > 100:
        raise AliyunError("isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制")
    if not all(isinstance(p, str) and MOBILE.match(p) for p in phones):
        raise AliyunError("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
    texts = [
        render_sms(state, str(signs[i]), params["TemplateCode"], json.dumps(values[i]) if values else "")
        for i in range(len(phones))
    ]
    out_id = params.get("OutId", "")
    biz_id = f"{state.next_provider_id()}^0"
    fail = state.take_fault("aliyun_sms", "send", ("fail_reports",)) is not None
    reports = []
    for phone, text in zip(phones, texts, strict=True):
        state.record(
            "aliyun_sms", "SendBatchSms", reference=out_id or None, recipient=phone, text=text, provider_id=biz_id
        )
        reports.append(sms_report(state, phone, biz_id, out_id, text, fail))
    remember_details(state, params["TemplateCode"], texts, reports)
    schedule_reports(state, "aliyun_sms", "sms_report", reports)
    return answer({"Code": "OK", "Message": "OK", "BizId": biz_id})


def remember_details(state: SandboxState, template: str, texts: list[str], reports: list[dict[str, Any]]) -> None:
    """Keep what QuerySendDetails answers about each (BizId, phone) of a send."""
    day = datetime.now(CHINA_TZ).strftime("%Y%m%d")
    for text, report in zip(texts, reports, strict=True):
        state.sms_details[(report["biz_id"], report["phone_number"], state.next_provider_id())] = {
            "day": day,
            "text": text,
            "template": template,
            "report": report,
            "ready_at": time.time() + state.config.report_delay,
        }


def query_send_details(state: SandboxState, params: dict[str, str]) -> JSONResponse:
    """QuerySendDetails: one number's messages of one day (optionally one BizId), paged (PageSize 1-50).

    SendStatus 1 = waiting for a report, 2 = failed, 3 = delivered (dysmsapi 2017-05-25 reference).
    Only the sandbox's kept window of sends is known (SandboxConfig.keep_messages).
    """
    require(params, "PhoneNumber", "SendDate", "PageSize", "CurrentPage")
    phone = params["PhoneNumber"].strip()
    if not MOBILE.match(phone):
        raise AliyunError("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
    try:
        day = datetime.strptime(params["SendDate"], "%Y%m%d").replace(tzinfo=CHINA_TZ)
    except ValueError as exc:
        raise AliyunError("isv.INVALID_PARAMETERS", "SendDate 格式为 yyyyMMdd") from exc
    age = (datetime.now(CHINA_TZ) - day).days
    if not 0 <= age < 30:
        raise AliyunError("isv.INVALID_PARAMETERS", "只能查询最近30天的记录 / only the last 30 days")
    size, page = params["PageSize"], params["CurrentPage"]
    if not size.isdigit() or not 1 <= int(size) <= 50 or not page.isdigit() or int(page) < 1:
        raise AliyunError("isv.INVALID_PARAMETERS", "PageSize 取值 1-50，CurrentPage 从 1 开始")
    biz_id = params.get("BizId", "")
    wanted = params["SendDate"]
    found = [
        detail
        for (bid, number, _), detail in state.sms_details.items()
        if number == phone and detail["day"] == wanted and (not biz_id or bid == biz_id)
    ]
    start = (int(page) - 1) * int(size)
    now = time.time()
    items = []
    for detail in found[start : start + int(size)]:
        report = detail["report"]
        settled = now >= detail["ready_at"]
        items.append(
            {
                "PhoneNum": phone,
                "SendStatus": (3 if report["success"] else 2) if settled else 1,
                "ErrCode": report["err_code"] if settled else "",
                "TemplateCode": detail["template"],
                "Content": detail["text"],
                "SendDate": report["send_time"],
                "ReceiveDate": report["report_time"] if settled else "",
                "OutId": report["out_id"],
            }
        )
    return answer(
        {"Code": "OK", "Message": "OK", "TotalCount": len(found), "SmsSendDetailDTOs": {"SmsSendDetailDTO": items}}
    )


def schedule_reports(state: SandboxState, provider: str, kind: str, reports: list[dict[str, Any]]) -> None:
    """Push reports after the delay (twice when a duplicate_reports fault says so; never on drop_reports)."""
    if state.take_fault(provider, "send", ("drop_reports",)) is not None:
        return
    state.push_later(kind, reports)
    if state.take_fault(provider, "send", ("duplicate_reports",)) is not None:
        state.push_later(kind, reports)


def single_call_by_tts(state: SandboxState, params: dict[str, str]) -> JSONResponse:
    """SingleCallByTts: one TTS call, per-callee limits enforced."""
    require(params, "CalledShowNumber", "CalledNumber", "TtsCode")
    callee = params["CalledNumber"]
    if not PHONE.match(callee):
        raise AliyunError("isv.MOBILE_NUMBER_ILLEGAL", "被叫号码不合法")
    if not re.fullmatch(r"TTS_\d+", params["TtsCode"]):
        raise AliyunError("isv.TTS_TEMPLATE_ILLEGAL", "TTS模板不合法")
    try:
        tts = json.loads(params.get("TtsParam") or "{}")
    except ValueError as exc:
        raise AliyunError("isv.INVALID_JSON_PARAM", "JSON参数不合法") from exc
    play_times = params.get("PlayTimes", "1")
    if not play_times.isdigit() or not 1 <= int(play_times) <= 3:
        raise AliyunError("isv.INVALID_PARAMETERS", "PlayTimes 取值 1-3")
    now = time.time()
    calls = [t for t in state.voice_calls.get(callee, ()) if now - t < 86400]
    for window, allowed in state.config.voice_limits:
        if sum(1 for t in calls if now - t < window) >= allowed:
            raise AliyunError("isv.BUSINESS_LIMIT_CONTROL", "触发号码流控 / callee limit reached")
    calls.append(now)
    state.voice_calls[callee] = calls
    call_id = f"{state.next_provider_id()}^{state.next_provider_id()}"
    out_id = params.get("OutId", "")
    text = "".join(str(v) for v in tts.values()) if isinstance(tts, dict) else ""
    state.record(
        "aliyun_voice", "SingleCallByTts", reference=out_id or None, recipient=callee, text=text, provider_id=call_id
    )
    failed = callee.endswith(state.config.undeliverable_suffix) or (
        state.take_fault("aliyun_voice", "send", ("fail_reports",)) is not None
    )
    report = {
        "call_id": call_id,
        "start_time": china_now(),
        "end_time": china_now(),
        "duration": 0 if failed else 12,
        "status_code": "200005" if failed else "200000",
        "status_msg": "用户未接听" if failed else "用户听完自然挂机",
        "smart_status_code": "NOANSWER" if failed else "ANSWERED",
        "out_id": out_id,
        "callee": callee,
        "caller": params["CalledShowNumber"],
        "hangup_direction": "" if failed else "1",
        "toll_type": "LOCAL",
    }
    schedule_reports(state, "aliyun_voice", "voice_report", [report])
    return answer({"Code": "OK", "Message": "OK", "CallId": call_id})


def _dial_leg(state: SandboxState, number: str) -> str | None:
    """How one leg of a 双呼 call ends in the sandbox: None answered, else BUSY or NOANSWER (by number suffix)."""
    if number.endswith(state.config.busy_suffix):
        return "BUSY"
    if number.endswith(state.config.undeliverable_suffix):
        return "NOANSWER"
    return None


# VoiceReport status codes for the outcomes the sandbox simulates.
DIAL_STATUS = {
    "ANSWERED": ("200000", "双方通话结束"),
    "BUSY": ("200002", "用户忙"),
    "NOANSWER": ("200005", "用户未接听"),
    "CANCELLED": ("200010", "呼叫已取消"),
}


def click_to_dial(state: SandboxState, params: dict[str, str]) -> JSONResponse:
    """ClickToDial (双呼): the caller leg first, then the called leg, one VoiceReport with the outcome.

    The caller's leg decides first: busy or unanswered there, the called number is never dialled
    (`leg` "caller"); otherwise the called leg's outcome (`leg` "callee"), or ANSWERED when both
    answer. A CancelCall before the report goes out turns it into CANCELLED.
    """
    require(params, "CallerShowNumber", "CallerNumber", "CalledShowNumber", "CalledNumber")
    caller, called = params["CallerNumber"], params["CalledNumber"]
    if not PHONE.match(caller) or not PHONE.match(called):
        raise AliyunError("isv.MOBILE_NUMBER_ILLEGAL", "号码不合法")
    timeout = params.get("SessionTimeout", "120")
    if not timeout.isdigit() or not 1 <= int(timeout) <= 7200:
        raise AliyunError("isv.INVALID_PARAMETERS", "SessionTimeout 取值 1-7200")
    call_id = f"{state.next_provider_id()}^{state.next_provider_id()}"
    out_id = params.get("OutId", "")
    state.record(
        "aliyun_voice", "ClickToDial", reference=out_id or None, recipient=called, text="", provider_id=call_id
    )
    caller_end = _dial_leg(state, caller)
    callee_end = None if caller_end else _dial_leg(state, called)
    smart = caller_end or callee_end or "ANSWERED"
    code, message = DIAL_STATUS[smart]
    report = {
        "call_id": call_id,
        "start_time": china_now(),
        "end_time": china_now(),
        "duration": 30 if smart == "ANSWERED" else 0,
        "status_code": code,
        "status_msg": message,
        "smart_status_code": smart,
        "out_id": out_id,
        "caller": params["CallerShowNumber"],
        "callee": called,
        "leg": "caller" if caller_end else "callee" if callee_end else "",
        "hangup_direction": "1" if smart == "ANSWERED" else "",
        "record_flag": params.get("RecordFlag", "false"),
        "toll_type": "LOCAL",
    }
    state.dial_calls[call_id] = (time.time() + state.config.report_delay, report)  # a bounded window
    schedule_reports(state, "aliyun_voice", "voice_report", [report])
    return answer({"Code": "OK", "Message": "OK", "CallId": call_id})


def cancel_call(state: SandboxState, params: dict[str, str]) -> JSONResponse:
    """CancelCall: a call whose report has not gone out yet ends CANCELLED (Status true); else Status false."""
    require(params, "CallId")
    entry = state.dial_calls.get(params["CallId"])
    if entry is None or time.time() >= entry[0] - 0.05:  # its report is (about to be) on the way: the call ended
        return answer({"Code": "OK", "Message": "OK", "Status": False})
    report = entry[1]
    code, message = DIAL_STATUS["CANCELLED"]
    report.update(status_code=code, status_msg=message, smart_status_code="CANCELLED", duration=0, leg="")
    state.record(
        "aliyun_voice",
        "CancelCall",
        reference=report.get("out_id") or None,
        recipient=None,
        text="",
        provider_id=params["CallId"],
    )
    return answer({"Code": "OK", "Message": "OK", "Status": True})


ACTIONS = {
    "SendSms": ("aliyun_sms", send_sms),
    "SendBatchSms": ("aliyun_sms", send_batch_sms),
    "QuerySendDetails": ("aliyun_sms", query_send_details),
    "SingleCallByTts": ("aliyun_voice", single_call_by_tts),
    "ClickToDial": ("aliyun_voice", click_to_dial),
    "CancelCall": ("aliyun_voice", cancel_call),
}


async def rpc(request: Request) -> Response:
    """The RPC endpoint: dispatch on the action (v1 `Action`, v3 `x-acs-action`) after faults and authentication."""
    state: SandboxState = request.app.state.sandbox
    params = await read_params(request)
    v3 = request.headers.get("authorization", "").startswith("ACS3-")
    action = request.headers.get("x-acs-action", "") if v3 else params.get("Action", "")
    if action not in ACTIONS:
        return error_answer(
            "InvalidAction.NotFound", "Specified api is not found, please check your url and method.", 404
        )
    provider, handler = ACTIONS[action]
    # Queries are counted and faulted apart from sends (fault `target: "status"`).
    target = "status" if action == "QuerySendDetails" else "send"
    injected = await apply_fault(state, provider, fault_error(provider), target=target)
    if injected is not None:
        return injected
    try:
        if v3:
            await authenticate_v3(state, request)
        else:
            authenticate(state, request.method, params)
        return handler(state, params)
    except AliyunError as exc:
        if action != "QuerySendDetails":
            state.record(
                provider,
                action,
                reference=params.get("OutId") or None,
                recipient=None,
                text="",
                provider_id="",
                error=exc.code,
            )
        return error_answer(exc.code, exc.message, exc.status)
