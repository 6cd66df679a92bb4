"""Fifty concurrent retries with one Idempotency-Key make exactly one notice (real server, real database)."""

from __future__ import annotations

import asyncio
import random

import httpx
from sqlmodel import Session, select

from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import NoticeOutbox
from tests.factories import make_subscriber
from tests.govconnect.notices.test_notices_api import notice_body


async def test_fifty_concurrent_retries_make_one_notice(
    live_server: str, session: Session, auth: dict[str, str]
) -> None:
    make_subscriber(session, "13800000001", "oid-1", regions=["江山市"], name="张三")
    headers = {**auth, "Idempotency-Key": "flood-2026-06-01"}
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=live_server, timeout=30, limits=limits) as client:

        async def post_until_answered() -> httpx.Response:
            # Fifty at once from one key is more than its share: the overflow is told to retry (503).
            while True:
                answer = await client.post("/api/v1/notices", json=notice_body(channels=["sms"]), headers=headers)
                if answer.status_code != 503:
                    return answer
                await asyncio.sleep(float(answer.headers["Retry-After"]) * random.random())

        responses = await asyncio.gather(*(post_until_answered() for _ in range(50)))
        assert {r.status_code for r in responses} == {202}, {r.status_code: r.text for r in responses}
        assert len({r.json()["id"] for r in responses}) == 1
        conflict = await client.post("/api/v1/notices", json=notice_body(title="改了"), headers=headers)
        assert conflict.status_code == 409
    session.expire_all()
    assert len(session.exec(select(Notice)).all()) == 1
    assert len(session.exec(select(NoticeOutbox)).all()) == 1
