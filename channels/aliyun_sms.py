"""Alibaba Cloud SMS (dysmsapi 2017-05-25): SendSms, SendBatchSms, SmsReport and SmsUp pushes.

One message alone goes out by `SendSms` with `OutId` = our reference. Several messages with the
same text go out by one `SendSms` (≤ 1000 numbers); several with different texts by
`SendBatchSms` (≤ 100 numbers, per-number params). Such a shared request carries a group id as
`OutId`, so its status reports are matched by (BizId, phone number): `Receipt.reference` is then
None and `Receipt.recipient` is set.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from channels import aliyun_rpc
from channels.base import (
    CHINA_TZ,
    Channel,
    InboundReply,
    OutboundMessage,
    PermanentError,
    Receipt,
    RetryableError,
    SendResult,
)
from channels.sms_text import compose, count_parts

MOBILE = re.compile(r"^(?:\+?86|0086)?1[3-9]\d{9}$")
GROUP_PREFIX = "grp-"
SEND_SMS_MAX = 1000
SEND_BATCH_MAX = 100

# Per-recipient or content problems: retrying the same message cannot succeed.
PERMANENT = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SMS_SIGN_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.TEMPLATE_PARAMS_ILLEGAL",
        "isv.INVALID_PARAMETERS",
        "isv.INVALID_JSON_PARAM",
        "isv.PARAM_LENGTH_LIMIT",
        "isv.PARAM_NOT_SUPPORT_URL",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.MOBILE_COUNT_OVER_LIMIT",
        "isv.EXTEND_CODE_ERROR",
        "isv.DOMESTIC_NUMBER_NOT_SUPPORTED",
        "isv.DENY_IP_RANGE",
        "isv.ACCOUNT_NOT_EXISTS",
        "isv.ACCOUNT_ABNORMAL",
        "isv.PRODUCT_UN_SUBSCRIPT",
        "isv.PRODUCT_UNSUBSCRIBE",
        "isv.SMS_CONTENT_ILLEGAL",
        "isv.SMS_TEST_NUMBER_LIMIT",
    }
)
# Limits and account states that pass with time: retry later (seconds when the provider gives none).
RETRYABLE_AFTER: dict[str, float] = {
    "isv.BUSINESS_LIMIT_CONTROL": 60.0,  # per-number minute/hour/day flow control
    "isv.DAY_LIMIT_CONTROL": 3600.0,
    "isv.AMOUNT_NOT_ENOUGH": 600.0,  # an operator tops the account up
    "isv.OUT_OF_SERVICE": 600.0,
}


@dataclass(frozen=True)
class AliyunSmsConfig:
    """Where and as whom to call dysmsapi."""

    base_url: str
    access_key_id: str
    access_key_secret: str
    sign_name: str
    template_code: str
    template_param_name: str = "content"


# QuerySendDetails (dysmsapi 2017-05-25 API reference): PageSize 1-50; SendStatus 1 waiting for
# the carrier's report, 2 failed, 3 delivered; only the last 30 days can be asked about.
QUERY_PAGE_SIZE = 50
QUERY_MAX_PAGES = 20
SEND_STATUS_WAITING, SEND_STATUS_FAILED, SEND_STATUS_DELIVERED = 1, 2, 3


@dataclass(frozen=True)
class SendDetail:
    """One message as QuerySendDetails reports it."""

    phone: str
    status: int
    err_code: str
    out_id: str
    send_date: datetime | None
    receive_date: datetime | None

    def receipt(self, reference: str, biz_id: str) -> Receipt | None:
        """Our receipt for this message, or None while Alibaba still waits for the carrier's report."""
        if self.status not in (SEND_STATUS_FAILED, SEND_STATUS_DELIVERED):
            return None
        delivered = self.status == SEND_STATUS_DELIVERED
        return Receipt(
            reference=reference,
            provider_id=biz_id,
            delivered=delivered,
            code=self.err_code or ("DELIVERED" if delivered else "failed"),
            reason="QuerySendDetails",
            occurred_at=self.receive_date,
            provider=AliyunSms.provider,
            recipient=self.phone,
        )


def is_mobile(number: str) -> bool:
    """Mainland mobile number, with or without +86 / 0086 / 86."""
    return bool(MOBILE.match(number.strip()))


def classify(reference: str, code: str, message: str, retry_after: float | None) -> SendResult:
    """Our canonical result for an Alibaba Cloud answer code."""
    if code == "OK":
        raise ValueError("OK is not an error")
    aliyun_rpc.raise_for_common(code, message, retry_after)
    if code in RETRYABLE_AFTER:
        return SendResult.retryable(reference, code, message, retry_after or RETRYABLE_AFTER[code])
    if code in PERMANENT or code.startswith("isv."):
        return SendResult.permanent(reference, code, message)
    # An unknown code outside isv.*: treat as a provider fault rather than lose the message.
    return SendResult.retryable(reference, code, message, retry_after)


def group_id(references: Sequence[str]) -> str:
    """A stable OutId for a request that carries several of our references (< 256 chars)."""
    return GROUP_PREFIX + hashlib.sha1("\n".join(references).encode(), usedforsecurity=False).hexdigest()[:24]


class AliyunSms(Channel):
    """SMS through the Alibaba Cloud SMS API."""

    channel = "sms"
    provider = "aliyun_sms"
    max_batch = SEND_SMS_MAX

    def __init__(self, config: AliyunSmsConfig, client: httpx.AsyncClient) -> None:
        self.config = config
        self.client = client

    def _params(self, message: OutboundMessage) -> dict[str, str]:
        if message.template_params:
            return dict(message.template_params)
        return {self.config.template_param_name: compose(message.text, "", message.kind).text}

    def _sign(self, message: OutboundMessage) -> str:
        """The agency's own signature when the message carries one, else the configured default."""
        return message.sign_name or self.config.sign_name

    def _template(self, message: OutboundMessage) -> str:
        return message.template_code or self.config.template_code

    def _parts(self, sign: str, message: OutboundMessage, params: dict[str, str]) -> int:
        if message.template_params and message.text:
            # A registered template: the phone shows its fixed text, which `message.text` renders.
            return count_parts(compose(message.text, sign, message.kind).text)
        return count_parts(f"【{sign}】" + "".join(params.values()))

    async def _call(self, action: str, params: dict[str, str]) -> tuple[dict[str, Any], float | None]:
        return await aliyun_rpc.call(
            self.client,
            self.config.base_url,
            action,
            params,
            access_key_id=self.config.access_key_id,
            secret=self.config.access_key_secret,
        )

    async def _send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        results: dict[str, SendResult] = {}
        valid: list[OutboundMessage] = []
        for m in messages:
            if is_mobile(m.recipient):
                valid.append(m)
            else:
                results[m.reference] = SendResult.permanent(m.reference, "isv.MOBILE_NUMBER_ILLEGAL", "invalid number")
        params = {m.reference: self._params(m) for m in valid}
        # One request takes one TemplateCode; SendSms also one signature and one set of params.
        by_template: dict[str, list[OutboundMessage]] = {}
        for m in valid:
            by_template.setdefault(self._template(m), []).append(m)
        for template, group in by_template.items():
            same = {json.dumps([self._sign(m), params[m.reference]], sort_keys=True) for m in group}
            if len(same) == 1:
                results.update(await self._send_same(template, group, params[group[0].reference]))
                continue
            for i in range(0, len(group), SEND_BATCH_MAX):
                results.update(await self._send_batch(template, group[i : i + SEND_BATCH_MAX], params))
        return [results[m.reference] for m in messages]

    async def _send_same(
        self, template: str, messages: Sequence[OutboundMessage], params: dict[str, str]
    ) -> dict[str, SendResult]:
        refs = [m.reference for m in messages]
        out_id = refs[0] if len(refs) == 1 else group_id(refs)
        sign = self._sign(messages[0])
        answer, retry_after = await self._call(
            "SendSms",
            {
                "PhoneNumbers": ",".join(m.recipient for m in messages),
                "SignName": sign,
                "TemplateCode": template,
                "TemplateParam": json.dumps(params, ensure_ascii=False),
                "OutId": out_id,
            },
        )
        return self._results(messages, answer, retry_after, self._parts(sign, messages[0], params))

    async def _send_batch(
        self, template: str, messages: Sequence[OutboundMessage], params: dict[str, dict[str, str]]
    ) -> dict[str, SendResult]:
        answer, retry_after = await self._call(
            "SendBatchSms",
            {
                "PhoneNumberJson": json.dumps([m.recipient for m in messages]),
                "SignNameJson": json.dumps([self._sign(m) for m in messages], ensure_ascii=False),
                "TemplateCode": template,
                "TemplateParamJson": json.dumps([params[m.reference] for m in messages], ensure_ascii=False),
                "OutId": group_id([m.reference for m in messages]),
            },
        )
        results = self._results(messages, answer, retry_after, 1)
        by_ref = {m.reference: m for m in messages}
        return {
            ref: (
                SendResult.accepted(ref, r.provider_id, self._parts(self._sign(by_ref[ref]), by_ref[ref], params[ref]))
                if r.provider_id
                else r
            )
            for ref, r in results.items()
        }

    async def query_send_details(
        self,
        phone: str,
        send_date: str,
        biz_id: str = "",
        *,
        acquire: Callable[[], Awaitable[bool]] | None = None,
    ) -> list[SendDetail]:
        """QuerySendDetails for one number and Beijing day (`yyyyMMdd`), one BizId when given, every page.

        `acquire` is awaited before each page (the caller's rate limit); False stops with a
        retryable `rate_limited`. Whole-request errors raise RetryableError / PermanentError.
        """
        details: list[SendDetail] = []
        for page in range(1, QUERY_MAX_PAGES + 1):
            if acquire is not None and not await acquire():
                raise RetryableError("rate_limited", "local rate limit for QuerySendDetails")
            params = {
                "PhoneNumber": phone,
                "SendDate": send_date,
                "PageSize": str(QUERY_PAGE_SIZE),
                "CurrentPage": str(page),
            }
            if biz_id:
                params["BizId"] = biz_id
            answer, retry_after = await self._call("QuerySendDetails", params)
            code = str(answer.get("Code", ""))
            if code != "OK":
                message = str(answer.get("Message", ""))
                aliyun_rpc.raise_for_common(code, message, retry_after)
                if code in RETRYABLE_AFTER:
                    raise RetryableError(code, message, retry_after or RETRYABLE_AFTER[code])
                raise PermanentError(code, message)
            items = (answer.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
            details.extend(_send_detail(item) for item in items if isinstance(item, dict))
            total = int(answer.get("TotalCount") or 0)
            if not items or len(details) >= total:
                break
        return details

    def _results(
        self, messages: Sequence[OutboundMessage], answer: dict[str, Any], retry_after: float | None, parts: int
    ) -> dict[str, SendResult]:
        code = str(answer.get("Code", ""))
        message = str(answer.get("Message", ""))
        if code == "OK":
            biz_id = str(answer.get("BizId") or "")
            if not biz_id:
                raise RetryableError("no_biz_id", "OK without BizId")
            return {m.reference: SendResult.accepted(m.reference, biz_id, parts) for m in messages}
        return {m.reference: classify(m.reference, code, message, retry_after) for m in messages}


def _send_detail(item: dict[str, Any]) -> SendDetail:
    status = item.get("SendStatus")
    return SendDetail(
        phone=str(item.get("PhoneNum") or ""),
        status=int(str(status)) if str(status).isdigit() else 0,
        err_code=str(item.get("ErrCode") or ""),
        out_id=str(item.get("OutId") or ""),
        send_date=parse_china_time(item.get("SendDate")),
        receive_date=parse_china_time(item.get("ReceiveDate")),
    )


def _load_array(payload: Any) -> list[dict[str, Any]]:
    if isinstance(payload, bytes | str):
        try:
            payload = json.loads(payload)
        except ValueError as exc:
            raise ValueError("payload is not JSON") from exc
    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list) or not all(isinstance(item, dict) for item in payload):
        raise ValueError("payload must be a JSON array of objects")
    return payload


def parse_china_time(value: Any) -> datetime | None:
    """`2017-09-01 00:00:00` (Beijing time) or `20170901000000` as an aware datetime; None if absent."""
    if not value:
        return None
    text = str(value).strip()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=CHINA_TZ)
        except ValueError:
            continue
    return None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


def parse_sms_report(payload: Any) -> list[Receipt]:
    """Receipts from an SmsReport push (JSON array); raises ValueError on a malformed payload."""
    receipts = []
    for item in _load_array(payload):
        out_id = str(item.get("out_id") or "") or None
        if not item.get("biz_id") and not out_id:
            raise ValueError("report item has neither biz_id nor out_id")
        receipts.append(
            Receipt(
                reference=None if out_id is None or out_id.startswith(GROUP_PREFIX) else out_id,
                provider_id=str(item.get("biz_id") or "") or None,
                delivered=_truthy(item.get("success")),
                code=str(item.get("err_code") or ""),
                reason=str(item.get("err_msg") or ""),
                occurred_at=parse_china_time(item.get("report_time")),
                provider=AliyunSms.provider,
                recipient=str(item.get("phone_number") or "") or None,
            )
        )
    return receipts


def parse_sms_up(payload: Any) -> list[InboundReply]:
    """Replies from an SmsUp push (JSON array); raises ValueError on a malformed payload."""
    replies = []
    for item in _load_array(payload):
        sender = str(item.get("phone_number") or "")
        if not sender or "content" not in item:
            raise ValueError("reply item needs phone_number and content")
        replies.append(
            InboundReply(
                sender=sender,
                text=str(item.get("content") or ""),
                provider=AliyunSms.provider,
                received_at=parse_china_time(item.get("send_time")),
                extra={k: item[k] for k in ("sign_name", "dest_code", "sequence_id") if k in item},
            )
        )
    return replies
