"""HTTP plumbing shared by the adapters: one request, whole-request failures classified.

httpx retries only connection setup; every other retry is ours, so this module only turns
timeouts, connection errors, 5xx and 429 into `RetryableError` (with Retry-After when given)
and leaves provider error codes to each adapter's own map.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx

from channels.base import RetryableError

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def request(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send one request; timeouts, connection failures, 5xx and 429 raise RetryableError."""
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise RetryableError("timeout", type(exc).__name__) from exc
    except httpx.TransportError as exc:
        raise RetryableError("connection", type(exc).__name__) from exc
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if response.status_code == 429:
        raise RetryableError("http_429", "rate limited", retry_after=retry_after)
    if response.status_code >= 500:
        raise RetryableError(f"http_{response.status_code}", "provider error", retry_after=retry_after)
    return response


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON object a provider answered; a non-JSON answer is a retryable provider fault."""
    try:
        body = response.json()
    except ValueError as exc:
        raise RetryableError(f"http_{response.status_code}", "answer is not JSON") from exc
    if not isinstance(body, dict):
        raise RetryableError(f"http_{response.status_code}", "answer is not a JSON object")
    return body
