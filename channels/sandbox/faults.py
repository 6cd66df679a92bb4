"""Turning an injected fault into what the provider would do on the wire."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.responses import JSONResponse, Response

from channels.sandbox.state import Fault, SandboxState

REQUEST_FAULTS = ("error", "http_5xx", "rate_limit", "latency", "timeout")


async def apply_fault(
    state: SandboxState,
    provider: str,
    provider_error: Callable[[Fault, int], Response],
    target: str = "send",
) -> Response | None:
    """A Response to answer instead of the real one, or None to go on (after any added latency).

    `provider_error(fault, http_status)` builds the provider-shaped error body.
    """
    state.requests[provider if target == "send" else f"{provider}:{target}"] += 1
    fault = state.take_fault(provider, target, REQUEST_FAULTS)
    if fault is None:
        return None
    if fault.kind == "latency":
        await asyncio.sleep(fault.latency_ms / 1000)
        return None
    if fault.kind == "timeout":
        await asyncio.sleep(fault.seconds)
        return JSONResponse({"message": "gateway timeout"}, status_code=504)
    if fault.kind == "http_5xx":
        return JSONResponse({"message": "service unavailable"}, status_code=fault.status)
    if fault.kind == "rate_limit":
        response = provider_error(fault, 429)
        response.headers["Retry-After"] = str(int(fault.retry_after) if fault.retry_after >= 1 else fault.retry_after)
        return response
    return provider_error(fault, 200)
