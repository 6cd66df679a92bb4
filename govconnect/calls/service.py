"""Placing, cancelling and settling click-to-dial calls; per-caller limits; one audit row per call.

The numbers come from the directory (a contact) or a delivery and go straight to the provider:
the call row names the contact or delivery, the audit row too, and no log line carries a number.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import httpx
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from channels.aliyun_voice import CallReport, cancel_call, click_to_dial
from channels.base import ProviderError
from govconnect.audit.record import Actor, record_audit
from govconnect.calls.models import DialCall
from govconnect.clock import utcnow
from govconnect.db import session_scope
from govconnect.errors import Conflict, NotFound, RateLimited
from govconnect.providers.channel_factory import config_for
from govconnect.settings import Settings

log = logging.getLogger("govconnect.calls")
T = DialCall.__table__  # type: ignore[attr-defined]
DIAL_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class DialLimiter:
    """Calls each caller ("staff:12", "key:gc_ab") may place in the configured window; shared through Redis."""

    def __init__(self, settings: Settings) -> None:
        self.item: RateLimitItem = parse(settings.aliyun_voice.dial_limit)
        storage: Storage = MemoryStorage()
        if settings.redis_url:
            storage = RedisStorage(
                "async+" + settings.redis_url, implementation="redispy", key_prefix=f"{settings.queue_name}:dial"
            )
        self.limiter = MovingWindowRateLimiter(storage)

    async def take(self, who: str) -> None:
        """Count one call for `who`; RateLimited (429) when the window is full."""
        if await self.limiter.hit(self.item, "dial", who):
            return
        stats = await self.limiter.get_window_stats(self.item, "dial", who)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            "dial_limited",
            f"拨打次数已达上限（{self.item}），请稍后再试 / Call limit reached ({self.item}); try again later",
            retry_after=retry_after,
        )


def dial_limiter(app_state: Any, settings: Settings) -> DialLimiter:
    """The app's limiter, made on first use."""
    limiter: DialLimiter | None = getattr(app_state, "dial_limiter", None)
    if limiter is None:
        limiter = app_state.dial_limiter = DialLimiter(settings)
    return limiter


def _configured(settings: Settings) -> None:
    voice = settings.aliyun_voice
    if not voice.access_key_id or not voice.show_number:
        raise Conflict("dial_unavailable", "未配置政务号码双呼 / Click-to-dial is not configured (aliyun_voice)")


def _start(
    engine: Engine, actor: Actor, staff_user_id: int | None, target: tuple[str, str], agency_id: int
) -> DialCall:
    """The call row and its audit row, in one transaction, before the provider is asked."""
    with session_scope(engine) as session:
        call = DialCall(
            agency_id=agency_id,
            actor=actor.label[:80],
            staff_user_id=staff_user_id,
            target_type=target[0],
            target_id=target[1],
            created_at=utcnow(),
        )
        session.add(call)
        session.flush()
        record_audit(
            session,
            actor,
            "click_to_dial",
            target[0],
            target[1],
            {"call": call.id},
            agency_id=agency_id,
            moment=call.created_at,
        )
        session.commit()
        session.refresh(call)
        session.expunge(call)
        return call


def _set(engine: Engine, call_id: str, values: dict[str, Any], only_status: str | None = "calling") -> None:
    with engine.begin() as conn:
        where = [T.c.id == call_id] + ([T.c.status == only_status] if only_status else [])
        conn.execute(update(T).where(*where).values(**values))


async def place_call(
    app_state: Any,
    settings: Settings,
    *,
    actor: Actor,
    agency_id: int,
    staff_user_id: int | None,
    caller: str,
    called: str,
    target: tuple[str, str],
) -> str:
    """Ring `caller` first, then bridge to `called`, both seeing the government number; the call's id.

    Counts against the caller's limit before anything else; a provider refusal leaves the call
    `rejected` with the provider's code (the audit row stays: the attempt was made).
    """
    _configured(settings)
    await dial_limiter(app_state, settings).take(actor.label)
    engine: Engine = app_state.engine
    call = await asyncio.to_thread(_start, engine, actor, staff_user_id, target, agency_id)
    voice = settings.aliyun_voice
    try:
        async with httpx.AsyncClient(timeout=DIAL_TIMEOUT) as client:
            provider_id = await click_to_dial(
                client,
                config_for("aliyun_voice", settings),
                caller=caller,
                called=called,
                out_id=call.id,
                session_timeout=voice.dial_session_timeout,
                record=voice.dial_record,
            )
    except (ProviderError, httpx.HTTPError) as exc:
        code = exc.code if isinstance(exc, ProviderError) else type(exc).__name__
        log.warning("call %s refused by the provider: %s", call.id, code)
        values = {"status": "rejected", "error_code": code[:64], "ended_at": utcnow()}
        await asyncio.to_thread(_set, engine, call.id, values)
        return call.id
    await asyncio.to_thread(_set, engine, call.id, {"provider_call_id": provider_id[:64]})
    log.info("call %s placed", call.id)
    return call.id


async def cancel(app_state: Any, settings: Settings, call: DialCall) -> bool:
    """Ask the provider to stop a call still ringing; True when it did (the report then says cancelled)."""
    if call.status != "calling" or not call.provider_call_id:
        raise Conflict("call_over", "通话已结束 / The call has already ended")
    async with httpx.AsyncClient(timeout=DIAL_TIMEOUT) as client:
        try:
            stopped = await cancel_call(client, config_for("aliyun_voice", settings), call.provider_call_id)
        except (ProviderError, httpx.HTTPError) as exc:
            raise Conflict("call_over", "无法取消通话 / The call could not be cancelled") from exc
    return stopped


def get_call(session: Session, call_id: str, *, agency_id: int, staff_user_id: int | None = None) -> DialCall:
    """The agency's call (and, for a staff member, their own), else NotFound."""
    call = session.get(DialCall, call_id[:32])
    if call is None or call.agency_id != agency_id:
        raise NotFound()
    if staff_user_id is not None and call.staff_user_id != staff_user_id:
        raise NotFound()
    return call


def settle_calls(engine: Engine, reports: Sequence[CallReport]) -> int:
    """Record how calls ended (from VoiceReport); repeated reports change nothing. How many rows moved."""
    moved = 0
    moment = utcnow()
    with engine.begin() as conn:
        for report in reports:
            result = conn.execute(
                update(T)
                .where(T.c.id == report.out_id[:32], T.c.status == "calling")
                .values(
                    status=report.state,
                    leg=report.leg[:8],
                    duration=report.duration,
                    error_code=None if report.state == "answered" else report.code[:64],
                    provider_call_id=report.call_id[:64] or T.c.provider_call_id,
                    ended_at=moment,
                )
            )
            moved += result.rowcount
    return moved
