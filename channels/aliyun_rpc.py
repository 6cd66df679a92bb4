"""Alibaba Cloud RPC-style requests signed with signature v1 (HMAC-SHA1), shared by SMS and voice.

Canonicalisation as documented: every parameter except `Signature`, sorted by name, each name
and value percent-encoded as RFC 3986 over UTF-8 (space → %20, `*` → %2A, `~` kept), joined
with `&`; string to sign = METHOD + `&` + enc("/") + `&` + enc(canonical query); key = secret +
`&`; Signature = Base64(HMAC-SHA1(key, string to sign)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from channels.base import PermanentError, RetryableError
from channels.http import json_body, parse_retry_after, request

SIGNATURE_METHOD = "HMAC-SHA1"
SIGNATURE_VERSION = "1.0"


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Alibaba Cloud specifies it (only A-Z a-z 0-9 - _ . ~ unescaped)."""
    return quote(value, safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    """Sorted, encoded `name=value` pairs joined by `&`, without `Signature`."""
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature")


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """METHOD&%2F&enc(canonical query)."""
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def sign(secret: str, method: str, params: Mapping[str, str]) -> str:
    """Base64(HMAC-SHA1(secret + '&', string to sign))."""
    digest = hmac.new(f"{secret}&".encode(), string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify(secret: str, method: str, params: Mapping[str, str]) -> bool:
    """True when `params['Signature']` is the right signature for the other parameters."""
    given = params.get("Signature", "")
    return hmac.compare_digest(given.encode(), sign(secret, method, params).encode())


def signed_params(
    action: str,
    params: Mapping[str, str],
    *,
    access_key_id: str,
    secret: str,
    version: str = "2017-05-25",
    method: str = "POST",
    nonce: str | None = None,
    timestamp: datetime | None = None,
) -> dict[str, str]:
    """Common parameters + `params` + Signature, ready to send."""
    when = (timestamp or datetime.now(UTC)).astimezone(UTC)
    full = {
        "AccessKeyId": access_key_id,
        "Action": action,
        "Format": "JSON",
        "RegionId": "cn-hangzhou",
        "SignatureMethod": SIGNATURE_METHOD,
        "SignatureNonce": nonce or uuid.uuid4().hex,
        "SignatureVersion": SIGNATURE_VERSION,
        "Timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Version": version,
        **params,
    }
    full["Signature"] = sign(secret, method, full)
    return full


# Codes that concern the request itself, not the recipients: the same for every Alibaba Cloud API.
COMMON_RETRYABLE = frozenset(
    {
        "Throttling",
        "Throttling.User",
        "Throttling.Api",
        "ServiceUnavailable",
        "InternalError",
        "isv.SYSTEM_ERROR",
        "SignatureNonceUsed",  # a fresh nonce on the next attempt fixes it
    }
)
COMMON_PERMANENT = frozenset(
    {
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidAccessKeyId",
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "InvalidTimeStamp.Expired",
        "InvalidTimeStamp.Format",
        "MissingParameter",
        "InvalidParameter",
        "Forbidden.RAM",
        "isv.RAM_PERMISSION_DENY",
        "InvalidAction.NotFound",
        "InvalidVersion",
    }
)


async def call(
    client: httpx.AsyncClient,
    base_url: str,
    action: str,
    params: Mapping[str, str],
    *,
    access_key_id: str,
    secret: str,
    version: str = "2017-05-25",
) -> tuple[dict[str, Any], float | None]:
    """POST one signed RPC request (form body); the JSON answer, whatever its Code, and Retry-After."""
    body = signed_params(action, params, access_key_id=access_key_id, secret=secret, version=version)
    response = await request(client, "POST", base_url, data=body)
    answer = json_body(response)
    if "Code" not in answer:
        raise RetryableError(f"http_{response.status_code}", "answer has no Code")
    return answer, parse_retry_after(response.headers.get("Retry-After"))


def raise_for_common(code: str, message: str, retry_after: float | None = None) -> None:
    """Raise the whole-request error for a code every Alibaba Cloud API shares."""
    if code in COMMON_RETRYABLE:
        raise RetryableError(code, message, retry_after=retry_after)
    # Missing*/Invalid*/Forbidden* describe a malformed or unauthorised request: never fixed by a retry.
    if code in COMMON_PERMANENT or code.startswith(("Missing", "Invalid", "Forbidden")):
        raise PermanentError(code, message)
