"""Delivery-status callbacks to agencies: HTTPS only, public addresses only, HMAC-signed, retried on 5xx."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.engine import Engine

from govconnect.agencies.models import Agency
from govconnect.errors import Invalid
from govconnect.jobs import job
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import Delivery
from govconnect.settings import Settings

log = logging.getLogger("govconnect.notices")
D = Delivery.__table__  # type: ignore[attr-defined]
N = Notice.__table__  # type: ignore[attr-defined]
A = Agency.__table__  # type: ignore[attr-defined]
SIGNATURE_HEADER = "X-GovConnect-Signature"
MAX_ATTEMPTS = 8


class CallbackUrlError(Invalid):
    """The URL may not receive callbacks."""

    def __init__(self, message: str) -> None:
        super().__init__("callback_url_refused", message)


def signing_secret(settings: Settings, agency_id: int) -> str:
    """The per-agency HMAC key, derived from SECRET_KEY (nothing extra to store or leak)."""
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, f"agency-callback:{agency_id}".encode(), hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def check_callback_url(url: str, settings: Settings) -> str:
    """Refuse non-HTTPS URLs and hosts resolving to loopback/private addresses (allowed in test mode)."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (settings.test_mode and parts.scheme == "http"):
        raise CallbackUrlError("回调地址必须使用 HTTPS / The callback URL must use HTTPS")
    if not parts.hostname:
        raise CallbackUrlError("回调地址缺少主机名 / The callback URL has no host")
    if settings.test_mode:
        return url
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise CallbackUrlError("回调地址无法解析 / The callback host does not resolve") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise CallbackUrlError(
                "回调地址指向内网或本机 / The callback URL resolves to a private or loopback address"
            )
    return url


_CALLBACKS_SEEN: dict[int, tuple[float, bool]] = {}


def _any_callback_url(engine: Engine) -> bool:
    """Whether any agency registered a callback (cached briefly: receipts arrive by the thousand)."""
    stamp, seen = _CALLBACKS_SEEN.get(id(engine), (0.0, False))
    if time.monotonic() - stamp < 5.0:
        return seen
    with engine.connect() as conn:
        seen = conn.execute(select(A.c.id).where(A.c.callback_url.is_not(None)).limit(1)).first() is not None
    _CALLBACKS_SEEN[id(engine)] = (time.monotonic(), seen)
    return seen


def _events(engine: Engine, delivery_ids: Sequence[str]) -> dict[int, list[dict[str, Any]]]:
    with engine.connect() as conn:
        rows: Any = conn.execute(
            select(N.c.agency_id, D.c.id, D.c.notice_id, D.c.channel, D.c.status, D.c.error_code, D.c.final_at)
            .join(N, N.c.id == D.c.notice_id)
            .join(A, A.c.id == N.c.agency_id)
            .where(D.c.id.in_(list(delivery_ids)), A.c.callback_url.is_not(None))
        ).all()
    out: dict[int, list[dict[str, Any]]] = {}
    for agency_id, did, nid, channel, status, code, final_at in rows:
        out.setdefault(agency_id, []).append(
            {
                "delivery_id": did,
                "notice_id": nid,
                "channel": channel,
                "status": status,
                "error_code": code,
                "at": final_at.isoformat() if final_at else None,
            }
        )
    return out


def _callback_url(engine: Engine, agency_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(A.c.callback_url).where(A.c.id == agency_id)).scalar()  # type: ignore[no-any-return]


async def emit_status_events(ctx: dict[str, Any], delivery_ids: Sequence[str]) -> None:
    """Queue callbacks for these deliveries to agencies that registered a URL."""
    if not delivery_ids or not await asyncio.to_thread(_any_callback_url, ctx["engine"]):
        return
    grouped = await asyncio.to_thread(_events, ctx["engine"], delivery_ids)
    for agency_id, events in grouped.items():
        await ctx["queue"].enqueue("post_agency_callback", agency_id=agency_id, events=events, attempt=0)


@job
async def post_agency_callback(
    ctx: dict[str, Any], agency_id: int, events: list[dict[str, Any]], attempt: int = 0
) -> str:
    """POST signed status events; retry 5xx, 429 and network errors with backoff, never 4xx."""
    settings: Settings = ctx["settings"]
    url = await asyncio.to_thread(_callback_url, ctx["engine"], agency_id)
    if not url:
        return "no_url"
    try:
        check_callback_url(url, settings)
    except CallbackUrlError:
        log.warning("agency %s callback URL refused at send time", agency_id)
        return "refused"
    body = json.dumps({"events": events}, ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(signing_secret(settings, agency_id), timestamp, body),
    }
    client: httpx.AsyncClient | None = ctx.get("callback_client")
    owns = client is None
    client = client or httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=3.0), follow_redirects=False)
    try:
        response = await client.post(url, content=body, headers=headers)
        status = response.status_code
    except httpx.HTTPError:
        status = 0
    finally:
        if owns:
            await client.aclose()
    if 200 <= status < 300:
        return "ok"
    if 400 <= status < 500 and status != 429:
        log.warning("agency %s callback rejected with %d; not retried", agency_id, status)
        return f"rejected:{status}"
    if attempt + 1 >= MAX_ATTEMPTS:
        log.warning("agency %s callback gave up after %d attempts", agency_id, attempt + 1)
        return "gave_up"
    delay = min(3600.0, 5.0 * 2**attempt)
    await ctx["queue"].enqueue(
        "post_agency_callback", agency_id=agency_id, events=events, attempt=attempt + 1, defer_by=delay
    )
    return f"retry:{status}"
