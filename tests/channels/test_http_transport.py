"""The adapters' shared client (httpx over aiohttp): answers, timeouts and errors classified as before."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from channels.base import RetryableError
from channels.http import request
from govconnect.providers.channel_factory import provider_http_client
from tests.channels.conftest import Sandbox


async def test_provider_client_reuses_connections_and_classifies_failures(sandbox: Sandbox) -> None:
    client = provider_http_client()
    try:
        answers = await asyncio.gather(*(request(client, "GET", f"{sandbox.url}/_sandbox") for _ in range(30)))
        assert {r.status_code for r in answers} == {200} and answers[0].json()
        await sandbox.fault("wechat_mp", "rate_limit", retry_after=7, count=1)
        url = f"{sandbox.url}/wechat/cgi-bin/message/template/send?access_token=x"
        with pytest.raises(RetryableError) as limited:
            await request(client, "POST", url, json={})
        assert limited.value.code == "http_429" and limited.value.retry_after == 7
        await sandbox.fault("wechat_mp", "timeout", seconds=2, count=1)
        with pytest.raises(RetryableError) as held:  # no answer in time: the provider may have it
            await request(client, "POST", url, json={}, timeout=httpx.Timeout(0.3, connect=1.0))
        assert held.value.code == "timeout"
    finally:
        await client.aclose()
    async with provider_http_client() as other:
        with pytest.raises(RetryableError) as refused:  # nothing listens there
            await request(other, "GET", "http://127.0.0.1:9/")
    assert refused.value.code in ("connection", "timeout")
