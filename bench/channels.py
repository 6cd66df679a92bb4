"""Messages per second each channel adapter pushes through the provider sandbox, from one process.

The sandbox runs in a separate process (`python -m channels.sandbox PORT --no-limits`) so it does
not share this process's interpreter. Each channel sends single-recipient messages from
CONCURRENCY tasks over one httpx client for SECONDS; SMS and WeCom also report batched sends
(1000 recipients per request), DingTalk batched sends of 100 (its most per task). Final line:
JSON keyed by provider.

    .venv/bin/python bench/channels.py [--seconds 3] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from channels.aliyun_sms import AliyunSms, AliyunSmsConfig  # noqa: E402
from channels.aliyun_voice import AliyunVoice, AliyunVoiceConfig, CalleeLimiter, click_to_dial  # noqa: E402
from channels.base import Channel, MessageKind, OutboundMessage, Outcome  # noqa: E402
from channels.dingtalk import Dingtalk, DingtalkConfig  # noqa: E402
from channels.sandbox import SandboxConfig  # noqa: E402
from channels.sandbox.runner import bind_loopback  # noqa: E402
from channels.wechat_mp import WechatMp, WechatMpConfig  # noqa: E402
from channels.wecom import Wecom, WecomConfig  # noqa: E402
from channels.weibo import PostWindow, Weibo, WeiboConfig  # noqa: E402

D = SandboxConfig()


def adapters(base: str, client: httpx.AsyncClient) -> dict[str, Channel]:
    """One adapter per provider, pointed at the sandbox."""
    ak, secret = D.aliyun_access_key_id, D.aliyun_access_key_secret
    return {
        "aliyun_sms": AliyunSms(AliyunSmsConfig(f"{base}/dysmsapi/", ak, secret, "衢州发布", "SMS_000000"), client),
        "aliyun_voice": AliyunVoice(
            AliyunVoiceConfig(f"{base}/dyvmsapi/", ak, secret, "057000000", "TTS_000000"), client, CalleeLimiter(())
        ),
        "wechat_mp": WechatMp(WechatMpConfig(f"{base}/wechat/", D.wechat_appid, D.wechat_secret, "tmpl"), client),
        "wecom": Wecom(WecomConfig(f"{base}/wecom/", D.wecom_corpid, D.wecom_corpsecret, D.wecom_agentid), client),
        "dingtalk": Dingtalk(
            DingtalkConfig(f"{base}/dingtalk/", D.dingtalk_appkey, D.dingtalk_appsecret, D.dingtalk_agentid), client
        ),
        "weibo": Weibo(WeiboConfig(f"{base}/weibo/", D.weibo_access_token), client, PostWindow(10**9)),
    }


def recipient(provider: str, i: int) -> str:
    """A valid recipient for the provider."""
    if provider in ("aliyun_sms", "aliyun_voice"):
        return f"138{i % 10**8:08d}"
    if provider == "wechat_mp":
        return f"oBench{i:010d}"
    return f"user{i}"


async def measure(adapter: Channel, provider: str, seconds: float, concurrency: int, batch: int = 1) -> dict[str, Any]:
    """Send for `seconds` from `concurrency` tasks; accepted messages per second."""
    counter = itertools.count()
    accepted = 0
    failed = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal accepted, failed
        while time.perf_counter() < deadline:
            first = next(counter) * batch
            messages = [
                OutboundMessage(
                    reference=f"bench-{provider}-{first + k}",
                    recipient=recipient(provider, first + k),
                    text=f"第{first}号通知：明日上午九点起停水。",
                    url="https://m.example.gov.cn/n/1",
                    kind=MessageKind.STAFF,
                )
                for k in range(batch)
            ]
            for result in await adapter.send(messages):
                if result.outcome is Outcome.ACCEPTED:
                    accepted += 1
                else:
                    failed += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {"msgs_per_s": round(accepted / elapsed, 1), "accepted": accepted, "failed": failed}


async def measure_dial(client: httpx.AsyncClient, base: str, seconds: float, concurrency: int) -> dict[str, Any]:
    """ClickToDial (双呼) requests the sandbox accepts a second (each places both legs and schedules a report)."""
    config = AliyunVoiceConfig(f"{base}/dyvmsapi/", D.aliyun_access_key_id, D.aliyun_access_key_secret, "057000000", "")
    counter = itertools.count()
    placed = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal placed
        while time.perf_counter() < deadline:
            i = next(counter)
            await click_to_dial(
                client, config, caller="13700000001", called=recipient("aliyun_voice", i), out_id=f"dial_bench{i}"
            )
            placed += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"calls_per_s": round(placed / (time.perf_counter() - start), 1), "placed": placed}


def cmpp_figures() -> dict[str, Any]:
    """From bench/channels_cmpp.py when the CMPP link exists."""
    path = Path(__file__).with_name("channels_cmpp.py")
    if not path.exists():
        return {"msgs_per_s": None, "note": "not available"}
    spec = importlib.util.spec_from_file_location("channels_cmpp_bench", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.measure_cmpp()
    return result if isinstance(result, dict) else {"msgs_per_s": result}


async def run(base: str, seconds: float, concurrency: int) -> dict[str, Any]:
    """Measure every provider against the sandbox at `base`."""
    figures: dict[str, Any] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0), limits=limits) as client:
        for _ in range(100):
            try:
                await client.get(f"{base}/_sandbox")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        for provider, adapter in adapters(base, client).items():
            figures[provider] = await measure(adapter, provider, seconds, concurrency)
            if provider in ("aliyun_sms", "wecom"):
                batched = await measure(adapter, provider, seconds, max(1, concurrency // 8), batch=1000)
                figures[provider]["batched_1000_msgs_per_s"] = batched["msgs_per_s"]
            if provider == "dingtalk":
                batched = await measure(adapter, provider, seconds, max(1, concurrency // 2), batch=100)
                figures[provider]["batched_100_msgs_per_s"] = batched["msgs_per_s"]
            print(provider, json.dumps(figures[provider]), flush=True)
        figures["click_to_dial"] = await measure_dial(client, base, seconds, concurrency)
        print("click_to_dial", json.dumps(figures["click_to_dial"]), flush=True)
    return figures


def main() -> None:
    """Parse arguments, run, print the final JSON line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    sock = bind_loopback()
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen([sys.executable, "-m", "channels.sandbox", str(port), "--no-limits"], cwd=ROOT)  # noqa: S603
    try:
        figures = asyncio.run(run(f"http://127.0.0.1:{port}", args.seconds, args.concurrency))
    finally:
        proc.terminate()
        proc.wait(10)
    # measure_cmpp() runs its own event loop (and its own ISMG sandbox), so it is called outside ours.
    figures["cmpp"] = cmpp_figures()
    order = ["aliyun_sms", "cmpp", "aliyun_voice", "click_to_dial", "wechat_mp", "wecom", "dingtalk", "weibo"]
    print(json.dumps({k: figures[k] for k in order}, ensure_ascii=False))


if __name__ == "__main__":
    main()
