"""The provider sandbox on a real loopback port, and a callback receiver standing in for the gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from channels.aliyun_sms import AliyunSmsConfig
from channels.aliyun_voice import AliyunVoiceConfig
from channels.dingtalk import DingtalkConfig
from channels.sandbox import SandboxConfig, SandboxState, create_sandbox_app
from channels.sandbox.runner import RunningServer, run_in_thread
from channels.wechat_mp import WechatMpConfig
from channels.wecom import WecomConfig
from channels.weibo import WeiboConfig

CALLBACK_TOKEN = "cb-token-for-tests"  # noqa: S105


@dataclass
class Receiver:
    """Records what the sandbox pushed; answers like the gateway's callback routes."""

    received: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0

    def app(self) -> Starlette:
        async def callback(request: Request) -> Response:
            if request.query_params.get("token") != CALLBACK_TOKEN:
                return JSONResponse({"error": "bad token"}, status_code=401)
            if self.fail_next > 0:
                self.fail_next -= 1
                return JSONResponse({"error": "try later"}, status_code=503)
            self.received.append(
                {"path": request.url.path, "query": dict(request.query_params), "body": await request.body()}
            )
            if request.url.path == "/callbacks/wechat_mp":
                return PlainTextResponse("success")
            return JSONResponse({"code": 0, "msg": "接收成功"})

        return Starlette(routes=[Route("/callbacks/{rest:path}", callback, methods=["POST"])])

    def on(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r["path"] == path]

    async def wait_for(self, path: str, n: int = 1, wait_s: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:  # noqa: ASYNC110 - pushes arrive on another thread's loop
            if len(self.on(path)) >= n:
                break
            await asyncio.sleep(0.02)
        return self.on(path)


@dataclass
class Sandbox:
    """The running sandbox: its URL, its state, and control helpers over HTTP."""

    url: str
    state: SandboxState
    receiver: Receiver

    async def fault(self, provider: str, kind: str, **options: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=5) as c:
            r = await c.post(f"{self.url}/_sandbox/faults", json={"provider": provider, "kind": kind, **options})
            assert r.status_code == 201, r.text
            return r.json()  # type: ignore[no-any-return]

    async def get(self, path: str, **params: Any) -> Any:
        async with httpx.AsyncClient(timeout=5) as c:
            r = await c.get(f"{self.url}{path}", params=params)
            assert r.status_code == 200, r.text
            return r.json()

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        async with httpx.AsyncClient(timeout=10) as c:
            return await c.post(f"{self.url}{path}", json=body)


@pytest.fixture(scope="session")
def _receiver_server() -> Iterator[tuple[Receiver, RunningServer]]:
    receiver = Receiver()
    server = run_in_thread(receiver.app())
    yield receiver, server
    server.stop()


@pytest.fixture(scope="session")
def _sandbox_server(_receiver_server: tuple[Receiver, RunningServer]) -> Iterator[tuple[SandboxState, RunningServer]]:
    config = SandboxConfig(
        callback_base_url=_receiver_server[1].url,
        callback_token=CALLBACK_TOKEN,
        report_delay=0.05,
        push_retry_delays=(0.05, 0.1),
    )
    state = SandboxState(config)
    server = run_in_thread(create_sandbox_app(state=state))
    yield state, server
    server.stop()


@pytest.fixture
def sandbox(
    _sandbox_server: tuple[SandboxState, RunningServer], _receiver_server: tuple[Receiver, RunningServer]
) -> Iterator[Sandbox]:
    """A clean sandbox (records, faults and tokens forgotten) and an empty receiver."""
    state, server = _sandbox_server
    receiver = _receiver_server[0]
    deadline = time.monotonic() + 5
    while state.pending_pushes and time.monotonic() < deadline:  # a previous test's pushes land first
        time.sleep(0.01)
    state.reset()
    receiver.received.clear()
    receiver.fail_next = 0
    yield Sandbox(server.url, state, receiver)
    state.reset()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The adapters' HTTP client, with short explicit timeouts."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(2.0, connect=1.0)) as c:
        yield c


def sms_config(sandbox: Sandbox, **overrides: Any) -> AliyunSmsConfig:
    cfg = sandbox.state.config
    values: dict[str, Any] = {
        "base_url": f"{sandbox.url}/dysmsapi/",
        "access_key_id": cfg.aliyun_access_key_id,
        "access_key_secret": cfg.aliyun_access_key_secret,
        "sign_name": "衢州发布",
        "template_code": "SMS_000000",
    }
    return AliyunSmsConfig(**{**values, **overrides})


def voice_config(sandbox: Sandbox, **overrides: Any) -> AliyunVoiceConfig:
    cfg = sandbox.state.config
    values: dict[str, Any] = {
        "base_url": f"{sandbox.url}/dyvmsapi/",
        "access_key_id": cfg.aliyun_access_key_id,
        "access_key_secret": cfg.aliyun_access_key_secret,
        "show_number": "057012345",
        "tts_code": "TTS_100001",
    }
    return AliyunVoiceConfig(**{**values, **overrides})


def wechat_config(sandbox: Sandbox, **overrides: Any) -> WechatMpConfig:
    cfg = sandbox.state.config
    values: dict[str, Any] = {
        "base_url": f"{sandbox.url}/wechat/",
        "appid": cfg.wechat_appid,
        "secret": cfg.wechat_secret,
        "template_id": "tmpl-notice-001",
    }
    return WechatMpConfig(**{**values, **overrides})


def wecom_config(sandbox: Sandbox, **overrides: Any) -> WecomConfig:
    cfg = sandbox.state.config
    values: dict[str, Any] = {
        "base_url": f"{sandbox.url}/wecom/",
        "corpid": cfg.wecom_corpid,
        "corpsecret": cfg.wecom_corpsecret,
        "agentid": cfg.wecom_agentid,
    }
    return WecomConfig(**{**values, **overrides})


def dingtalk_config(sandbox: Sandbox, **overrides: Any) -> DingtalkConfig:
    cfg = sandbox.state.config
    values: dict[str, Any] = {
        "base_url": f"{sandbox.url}/dingtalk/",
        "appkey": cfg.dingtalk_appkey,
        "appsecret": cfg.dingtalk_appsecret,
        "agentid": cfg.dingtalk_agentid,
    }
    return DingtalkConfig(**{**values, **overrides})


def weibo_config(sandbox: Sandbox, **overrides: Any) -> WeiboConfig:
    values: dict[str, Any] = {
        "base_url": f"{sandbox.url}/weibo/",
        "access_token": sandbox.state.config.weibo_access_token,
    }
    return WeiboConfig(**{**values, **overrides})
