"""Delivery-status callbacks to agencies: HTTPS only, public unicast addresses only, HMAC-signed, retried on 5xx.

The host is resolved once; every address it resolves to must be acceptable, and the request goes
to the address that was checked (the URL keeps its Host header and TLS server name), so a DNS
answer that changes between the check and the connection cannot send it inside our network.
"""

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
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


@lru_cache(maxsize=8)
def _networks(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


def address_refusal(address: IPAddress, settings: Settings) -> str | None:
    """Why an address may not receive callbacks ("multicast", "private" ...), or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    # Never acceptable, whatever is configured: not one host.
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified:
        return "unspecified"
    if address == _BROADCAST:
        return "broadcast"
    if settings.test_mode or any(address in net for net in _networks(settings.callback_allowed_networks)):
        return None
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_reserved:
        return "reserved"
    if address.is_private or not address.is_global:
        return "private"
    return None


@dataclass(frozen=True)
class CallbackTarget:
    """A checked callback URL and the address to connect to."""

    url: str  # the URL with the checked address in place of the host name
    host_header: str  # the original host[:port], sent as Host
    server_name: str  # the original host name, used for TLS SNI and certificate checks


def resolve_callback_url(url: str, settings: Settings) -> CallbackTarget:
    """Check a callback URL and pin it to one checked address; CallbackUrlError when it may not be used."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (settings.test_mode and parts.scheme == "http"):
        raise CallbackUrlError("回调地址必须使用 HTTPS / The callback URL must use HTTPS")
    if not parts.hostname:
        raise CallbackUrlError("回调地址缺少主机名 / The callback URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise CallbackUrlError("回调地址无法解析 / The callback host does not resolve") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise CallbackUrlError("回调地址无法解析 / The callback host does not resolve")
    for address in addresses:
        reason = address_refusal(address, settings)
        if reason is not None:
            raise CallbackUrlError(
                f"回调地址指向不允许的地址（{reason}） / The callback URL resolves to a {reason} address"
            )
    chosen = addresses[0]
    literal = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    host_header = parts.netloc.rsplit("@", 1)[-1]
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return CallbackTarget(url=pinned, host_header=host_header, server_name=parts.hostname)


def check_callback_url(url: str, settings: Settings) -> str:
    """Refuse non-HTTPS URLs and hosts resolving to anything but public unicast addresses (see address_refusal)."""
    resolve_callback_url(url, settings)
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
        return conn.execute(select(A.c.callback_url).where(A.c.id == agency_id)).scalar()


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
        target = await asyncio.to_thread(resolve_callback_url, url, settings)
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
        # To the checked address; Host and the TLS server name stay the URL's.
        headers["Host"] = target.host_header
        extensions = {"sni_hostname": target.server_name} if target.url.startswith("https://") else {}
        response = await client.post(target.url, content=body, headers=headers, extensions=extensions)
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
