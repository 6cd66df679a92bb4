"""What WeChat and WeCom share: the token call, `errcode` answers, the token-refresh retry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from channels.base import PermanentError, RetryableError
from channels.http import json_body, parse_retry_after, request
from channels.tokens import AccessToken

# The token was rejected: fetch a new one (once) and resend.
TOKEN_INVALID = frozenset({40001, 40014, 42001})
SYSTEM_BUSY = -1


async def fetch_token(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> tuple[str, float]:
    """GET a token endpoint; (access_token, expires_in) or a classified error."""
    response = await request(client, "GET", url, params=params)
    body = json_body(response)
    errcode = int(body.get("errcode") or 0)
    if errcode == 0 and body.get("access_token"):
        return str(body["access_token"]), float(body.get("expires_in") or 7200)
    reason = str(body.get("errmsg") or "token request failed")
    if errcode == SYSTEM_BUSY:
        raise RetryableError(str(errcode), reason, retry_after=parse_retry_after(response.headers.get("Retry-After")))
    # Wrong appid/secret, IP not whitelisted...: configuration, not something a retry fixes.
    raise PermanentError(str(errcode or "no_token"), reason)


Post = Callable[[str], Awaitable[tuple[dict[str, Any], float | None]]]


async def post_with_token(
    client: httpx.AsyncClient, token: AccessToken, url: str, payload: dict[str, Any]
) -> tuple[dict[str, Any], float | None]:
    """POST `payload` with the shared token; on 40001/42001 refresh once and resend."""
    current = await token.get()
    for attempt in (1, 2):
        response = await request(client, "POST", url, params={"access_token": current}, json=payload)
        body = json_body(response)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if int(body.get("errcode") or 0) in TOKEN_INVALID and attempt == 1:
            current = await token.get(stale=current)
            continue
        return body, retry_after
    raise AssertionError("unreachable")  # pragma: no cover
