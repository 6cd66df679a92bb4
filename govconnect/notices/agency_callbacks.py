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
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine

from govconnect.agencies.models import Agency
from govconnect.errors import Invalid
from govconnect.jobs import job
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import AgencyCallback, Delivery
from govconnect.notices.policy import now
from govconnect.settings import Settings

log = logging.getLogger("govconnect.notices")
D = Delivery.__table__  # type: ignore[attr-defined]
N = Notice.__table__  # type: ignore[attr-defined]
A = Agency.__table__  # type: ignore[attr-defined]
C = AgencyCallback.__table__  # type: ignore[attr-defined]
SIGNATURE_HEADER = "X-GovConnect-Signature"
# Owed callbacks are retried for at least this long, then marked failed for the agency to see.
GIVE_UP_SECONDS = 24 * 3600
# A worker taking a callback moves its due time this far ahead; if it dies, the sweeper retries after it.
CLAIM_LEASE_SECONDS = 60


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


def owe_events(conn: Any, agency_id: int, events: list[dict[str, Any]], moment: datetime) -> int:
    """Owe these events to the agency's callback URL, due now, in the caller's transaction; the row's id."""
    values = {"status": "pending", "attempts": 0, "next_attempt_at": moment, "last_result": "", "created_at": moment}
    statement = insert(C).values(agency_id=agency_id, events=events, **values).returning(C.c.id)
    return int(conn.execute(statement).scalar_one())


def _store(engine: Engine, grouped: dict[int, list[dict[str, Any]]], moment: datetime) -> list[tuple[int, int]]:
    """One owed callback row per agency; their (id, attempts) for the fast path."""
    with engine.begin() as conn:
        return [(owe_events(conn, agency_id, events, moment), 0) for agency_id, events in sorted(grouped.items())]


def job_id(callback_id: int, attempts: int) -> str:
    """One queued job per callback and attempt (a re-enqueue by the sweeper does not double it)."""
    return f"agency_callback:{callback_id}:{attempts}"


def owe_status_events(engine: Engine, delivery_ids: Sequence[str], moment: datetime) -> list[tuple[int, int]]:
    """Record the status events of these deliveries for agencies with a callback URL; (id, attempts) stored.

    Enough on its own where no queue is at hand (the CMPP link's receipts): the sweeper sends due rows.
    """
    if not delivery_ids or not _any_callback_url(engine):
        return []
    grouped = _events(engine, delivery_ids)
    return _store(engine, grouped, moment) if grouped else []


async def emit_status_events(ctx: dict[str, Any], delivery_ids: Sequence[str]) -> None:
    """Record callbacks for these deliveries to agencies that registered a URL, and queue their first try."""
    stored = await asyncio.to_thread(owe_status_events, ctx["engine"], delivery_ids, now(ctx))
    for callback_id, attempts in stored:
        await ctx["queue"].enqueue(
            "post_agency_callback", job_id=job_id(callback_id, attempts), callback_id=callback_id
        )


def _claim(engine: Engine, callback_id: int, moment: datetime) -> Any:
    """Take a due callback for one attempt (its due time moves a lease ahead), or None when not due."""
    with engine.begin() as conn:
        return conn.execute(
            update(C)
            .where(C.c.id == callback_id, C.c.status == "pending", C.c.next_attempt_at <= moment)
            .values(next_attempt_at=moment + timedelta(seconds=CLAIM_LEASE_SECONDS))
            .returning(C.c.agency_id, C.c.events, C.c.attempts, C.c.created_at)
        ).first()


def _settle(engine: Engine, callback_id: int, values: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(update(C).where(C.c.id == callback_id, C.c.status == "pending").values(**values))


def retry_delay(attempts: int) -> float:
    """Seconds before try `attempts + 1`: 5 s doubling up to an hour."""
    return min(3600.0, 5.0 * 2 ** min(attempts, 20))


async def _post(ctx: dict[str, Any], agency_id: int, events: list[dict[str, Any]]) -> int | str:
    """POST the signed events; the HTTP status (0: no answer), or why nothing was sent."""
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
        return response.status_code
    except httpx.HTTPError:
        return 0
    finally:
        if owns:
            await client.aclose()


@job
async def post_agency_callback(ctx: dict[str, Any], callback_id: int) -> str:
    """Try one owed callback: done on 2xx, rejected on 4xx (not 429), else retried with backoff for 24 h."""
    engine: Engine = ctx["engine"]
    moment = now(ctx)
    claimed = await asyncio.to_thread(_claim, engine, callback_id, moment)
    if claimed is None:
        return "not_due"
    agency_id, events, attempts, created_at = claimed
    outcome = await _post(ctx, agency_id, list(events))
    attempts += 1
    done = {"attempts": attempts, "next_attempt_at": None, "done_at": moment}
    if isinstance(outcome, str):  # the URL was removed or is no longer acceptable: nothing can be sent
        await asyncio.to_thread(_settle, engine, callback_id, {**done, "status": "failed", "last_result": outcome})
        return outcome
    if 200 <= outcome < 300:
        await asyncio.to_thread(_settle, engine, callback_id, {**done, "status": "delivered", "last_result": "ok"})
        return "ok"
    if 400 <= outcome < 500 and outcome != 429:
        log.warning("agency %s callback rejected with %d; not retried", agency_id, outcome)
        result = f"rejected:{outcome}"
        await asyncio.to_thread(_settle, engine, callback_id, {**done, "status": "rejected", "last_result": result})
        return result
    delay = retry_delay(attempts - 1)
    due = moment + timedelta(seconds=delay)
    if due - created_at > timedelta(seconds=GIVE_UP_SECONDS):
        log.warning("agency %s callback %s failed after %d attempts over 24 h", agency_id, callback_id, attempts)
        await asyncio.to_thread(
            _settle, engine, callback_id, {**done, "status": "failed", "last_result": f"gave_up:{outcome}"}
        )
        return "gave_up"
    values = {"attempts": attempts, "next_attempt_at": due, "last_result": f"retry:{outcome}"}
    await asyncio.to_thread(_settle, engine, callback_id, values)
    await ctx["queue"].enqueue(
        "post_agency_callback", job_id=job_id(callback_id, attempts), callback_id=callback_id, defer_by=delay
    )
    return f"retry:{outcome}"


def due_callbacks(conn: Any, moment: datetime, limit: int = 1000) -> list[tuple[int, int]]:
    """(id, attempts) of owed callbacks whose time has come (for the sweeper: their queued job may be gone)."""
    rows = conn.execute(
        select(C.c.id, C.c.attempts)
        .where(C.c.status == "pending", C.c.next_attempt_at <= moment)
        .order_by(C.c.next_attempt_at)
        .limit(limit)
    ).all()
    return [(int(r[0]), int(r[1])) for r in rows]


def callback_page(conn: Any, agency_id: int, status: str | None, limit: int, offset: int) -> tuple[list[Any], int]:
    """One agency's owed callbacks, newest first, and how many match."""
    where = [C.c.agency_id == agency_id] + ([C.c.status == status] if status else [])
    total = int(conn.execute(select(func.count()).select_from(C).where(*where)).scalar_one())
    rows = conn.execute(select(C).where(*where).order_by(C.c.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), total
