"""Progress of large notices: answered from the last count, refreshed in the background."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.notices.fanout import fanout_notice
from govconnect.notices.pipeline_models import Delivery
from govconnect.notices.service import ProgressCache
from tests.factories import make_subscriber
from tests.govconnect.notices.test_pipeline import deliveries, make_notice


async def test_slow_counts_are_reused_and_refreshed_in_the_background(
    ctx: dict[str, Any], session: Session, agency: Agency
) -> None:
    for i in range(3):
        make_subscriber(session, f"1320000300{i}", None, channels=["sms"])
    notice = make_notice(session, agency, channels=["sms"])
    await fanout_notice(ctx, notice.id)
    cache = ProgressCache(slow_seconds=0.0, max_age=0.2)  # every count counts as slow here
    first, first_at = cache.get(session, notice.id)
    assert first["sms"].queued == 3
    row = session.get(Delivery, deliveries(session, notice.id)[0].id)
    assert row is not None
    row.status = "delivered"
    session.add(row)
    session.commit()
    again, again_at = cache.get(session, notice.id)
    assert again == first and again_at == first_at  # within max_age: the last count, not a new one
    await asyncio.sleep(0.25)
    stale, _ = cache.get(session, notice.id)  # too old: answered at once, refreshed behind
    assert stale == first
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        fresh, fresh_at = cache.get(session, notice.id)
        if fresh_at > first_at:
            break
        await asyncio.sleep(0.05)
    assert fresh["sms"].delivered == 1 and fresh["sms"].queued == 2
    quick = ProgressCache(slow_seconds=60.0)  # small notices are counted on the spot every time
    assert quick.get(session, notice.id)[0]["sms"].delivered == 1
    assert not quick._entries


async def one_person_notice_counted_slowly(
    ctx: dict[str, Any], session: Session, agency: Agency, monkeypatch: Any, phone: str
) -> tuple[str, dict[str, float]]:
    """A notice to one person whose progress count takes `delay["seconds"]` longer (0.2 s at first)."""
    from govconnect.notices import service

    make_subscriber(session, phone, None, channels=["sms"])
    notice = make_notice(session, agency, channels=["sms"])
    await fanout_notice(ctx, notice.id)
    real_count = service._count_progress
    delay = {"seconds": 0.2}  # as a count of 200,000 deliveries under load would take

    def slowed(conn: Any, notice_id: str) -> Any:
        time.sleep(delay["seconds"])
        return real_count(conn, notice_id)

    monkeypatch.setattr(service, "_count_progress", slowed)
    return notice.id, delay


async def eventually(predicate: Any, within: float) -> bool:
    """Poll predicate() every 0.1 s until it holds or `within` seconds pass; its last answer."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return bool(predicate())


async def test_a_slow_count_is_refreshed_no_sooner_than_spacing_times_its_duration(
    ctx: dict[str, Any], session: Session, agency: Agency, monkeypatch: Any
) -> None:
    notice_id, _ = await one_person_notice_counted_slowly(ctx, session, agency, monkeypatch, "13200003100")
    cache = ProgressCache(slow_seconds=0.1, max_age=0.2, spacing=10)  # due after 10 x 0.2 s, not 0.2 s
    _, first_at = cache.get(session, notice_id)
    await asyncio.sleep(0.4)
    assert cache.get(session, notice_id)[1] == first_at and not cache._refreshing  # past max_age, not due
    assert await eventually(lambda: cache.get(session, notice_id)[1] > first_at, 10)  # refreshed once due


async def test_a_count_stretched_by_a_busy_process_is_still_refreshed_within_max_interval(
    ctx: dict[str, Any], session: Session, agency: Agency, monkeypatch: Any
) -> None:
    notice_id, _ = await one_person_notice_counted_slowly(ctx, session, agency, monkeypatch, "13200003200")
    # 100 x 0.2 s would be 20 s; the interval is capped at 0.5 s.
    cache = ProgressCache(slow_seconds=0.1, max_age=0.1, spacing=100, max_interval=0.5)
    _, first_at = cache.get(session, notice_id)
    assert await eventually(lambda: cache.get(session, notice_id)[1] > first_at, 5)


async def test_a_notice_whose_count_became_quick_is_counted_on_the_spot_again(
    ctx: dict[str, Any], session: Session, agency: Agency, monkeypatch: Any
) -> None:
    notice_id, delay = await one_person_notice_counted_slowly(ctx, session, agency, monkeypatch, "13200003300")
    cache = ProgressCache(slow_seconds=0.1, max_age=0.1, spacing=1)
    first, _ = cache.get(session, notice_id)
    assert first["sms"].queued == 1
    delay["seconds"] = 0.0  # the broadcast is over: counting is quick again
    row = session.get(Delivery, deliveries(session, notice_id)[0].id)
    assert row is not None
    row.status = "delivered"
    session.add(row)
    session.commit()
    # Not the last slow count forever.
    assert await eventually(lambda: cache.get(session, notice_id)[0]["sms"].delivered == 1, 5)
    assert notice_id not in cache._entries
