"""Alibaba Cloud signature v3 (`ACS3-HMAC-SHA256` in the `Authorization` header), as the current SDKs send it.

From Alibaba Cloud's "Request syntax and signature method V3" / "V3版本请求体&签名机制"
(alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature), checked
against the official SDK (`alibabacloud-tea-openapi`, under `alibabacloud-dysmsapi20170525`) in
tests/channels/test_aliyun_sdks.py:

- canonical request = METHOD `\\n` URI (the path, `/` when empty) `\\n` canonical query `\\n`
  canonical headers `\\n` signed header names `\\n` hashed payload;
- canonical query: parameters sorted by name, each value percent-encoded as RFC 3986 over UTF-8
  (`~` kept, space → %20), `name=value` joined by `&`;
- canonical headers: each signed header as `lowercase-name:trimmed value\\n`, sorted by name; the
  signed headers are `host`, `x-acs-*` and `content-type` when present (the SDK signs every header
  it sends, user-agent and accept too: a verifier takes the list from `SignedHeaders`);
- hashed payload: hex SHA-256 of the body (also sent as `x-acs-content-sha256`);
- string to sign = `ACS3-HMAC-SHA256\\n` + hex SHA-256 of the canonical request;
- signature = hex HMAC-SHA256(AccessKey secret, string to sign);
- `Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<a;b;c>,Signature=<hex>`.
The action and version travel in `x-acs-action` / `x-acs-version`, RPC parameters in the query
(form body for the JSON-array parameters of SendBatchSms).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

ALGORITHM = "ACS3-HMAC-SHA256"
REQUIRED_SIGNED = (
    "host",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
)
_AUTH = re.compile(r"^(\S+)\s+Credential=([^,]*),\s*SignedHeaders=([^,]*),\s*Signature=([0-9a-fA-F]*)\s*$")


@dataclass(frozen=True)
class Authorization:
    """The parts of an `Authorization: ACS3-...` header."""

    algorithm: str
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> Authorization | None:
    """The header's parts, or None when it is not shaped like a v3 authorization."""
    match = _AUTH.match(value.strip())
    if match is None:
        return None
    algorithm, key, names, signature = match.groups()
    return Authorization(algorithm, key, tuple(n.strip().lower() for n in names.split(";") if n.strip()), signature)


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 (the hashed payload)."""
    return hashlib.sha256(data).hexdigest()


def canonical_query(params: Mapping[str, str]) -> str:
    """Sorted `name=enc(value)` pairs joined by `&`."""
    return "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(params.items()))


def canonical_request(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    hashed_payload: str,
) -> str:
    """The canonical request over `signed_headers` (lowercase names; `headers` keyed lowercase)."""
    names = sorted(signed_headers)
    lines = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in names)
    return "\n".join([method.upper(), path or "/", canonical_query(query), lines, ";".join(names), hashed_payload])


def string_to_sign(canonical: str) -> str:
    """`ACS3-HMAC-SHA256\\n` + hex SHA-256 of the canonical request."""
    return f"{ALGORITHM}\n{sha256_hex(canonical.encode())}"


def signature(secret: str, to_sign: str) -> str:
    """Hex HMAC-SHA256(secret, string to sign)."""
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def signed_headers(
    method: str,
    url: str,
    action: str,
    query: Mapping[str, str],
    body: bytes,
    *,
    access_key_id: str,
    secret: str,
    version: str = "2017-05-25",
    content_type: str = "",
    nonce: str | None = None,
    when: datetime | None = None,
) -> dict[str, str]:
    """The headers of a v3-signed request to `url` (whose path is signed) with `query` and `body`."""
    parts = urlsplit(url)
    headers = {
        "host": parts.netloc,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
        "x-acs-content-sha256": sha256_hex(body),
    }
    if content_type:
        headers["content-type"] = content_type
    names = tuple(sorted(headers))
    canonical = canonical_request(method, parts.path, query, headers, names, headers["x-acs-content-sha256"])
    sig = signature(secret, string_to_sign(canonical))
    headers["Authorization"] = f"{ALGORITHM} Credential={access_key_id},SignedHeaders={';'.join(names)},Signature={sig}"
    return headers
