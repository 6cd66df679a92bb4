"""Verification codes go out at once through the SMS channel adapter (not the broadcast pipeline).

A code is one message to one number that must arrive within seconds; it carries no opt-out
hint (it is not a subscription notice) and its reference is logged, never the number or code.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from channels.base import MessageKind, OutboundMessage, Outcome
from govconnect.notices.models import new_id
from govconnect.providers.channel_factory import build_channel, provider_http_client

log = logging.getLogger("govconnect.citizens")
CODE_PROVIDER = "aliyun_sms"


class CodeNotSent(RuntimeError):
    """The SMS provider did not accept the code."""


async def send_code_sms(app: Any, phone: str, text: str) -> None:
    """Send one verification SMS through the configured SMS provider; raise CodeNotSent when refused."""
    client: httpx.AsyncClient | None = getattr(app.state, "code_http_client", None)
    if client is None:
        client = provider_http_client(app.state.settings.provider_proxy or None)
        app.state.code_http_client = client
    channel = build_channel(CODE_PROVIDER, app.state.settings, client)
    reference = f"vc{new_id()[:30]}"
    [result] = await channel.send(
        [OutboundMessage(reference=reference, recipient=phone, text=text, kind=MessageKind.STAFF)]
    )
    if result.outcome is not Outcome.ACCEPTED:
        log.warning("verification sms %s not accepted: %s", reference, result.code)
        raise CodeNotSent(result.code or "not accepted")


async def close_code_client(app: Any) -> None:
    """Close the HTTP client the code sender opened."""
    client = getattr(app.state, "code_http_client", None)
    if client is not None:
        await client.aclose()
        app.state.code_http_client = None
