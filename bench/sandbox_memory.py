"""Memory the provider sandbox holds after a large run: N SMS (SendSms, 100 numbers a request) and
N DingTalk work notices (asyncsend_v2, 100 people a task), through its HTTP app in-process.

    python -m bench.sandbox_memory --people 100000

Prints a final JSON line: Python heap still allocated after the run (tracemalloc), RSS growth,
and what the sandbox still counts. Run it against an older checkout (PYTHONPATH) to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import time
import tracemalloc
from typing import Any

import httpx

from channels import aliyun_rpc
from channels.sandbox import SandboxConfig, SandboxState, create_sandbox_app


def rss_mb() -> float:
    """Peak resident set size of this process (Linux: KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(people: int) -> dict[str, Any]:
    config = SandboxConfig(report_delay=0.0, dingtalk_daily_per_user=10**9)
    state = SandboxState(config)
    app = create_sandbox_app(state=state)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox", timeout=30) as client:
        token = (
            await client.get(
                "/dingtalk/gettoken", params={"appkey": config.dingtalk_appkey, "appsecret": config.dingtalk_appsecret}
            )
        ).json()["access_token"]
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        rss_before = rss_mb()
        started = time.perf_counter()
        for start in range(0, people, 100):
            numbers = [f"138{i:08d}" for i in range(start, min(people, start + 100))]
            params = {
                "PhoneNumbers": ",".join(numbers),
                "SignName": "衢州发布",
                "TemplateCode": "SMS_000000",
                "TemplateParam": json.dumps({"content": f"第{start}批：明日9时至17时柯城区部分地区停水。"}),
                "OutId": f"grp-{start:024x}",
            }
            signed = aliyun_rpc.signed_params(
                "SendSms",
                params,
                access_key_id=config.aliyun_access_key_id,
                secret=config.aliyun_access_key_secret,
            )
            assert (await client.post("/dysmsapi/", data=signed)).json()["Code"] == "OK"
            users = ",".join(f"user{i}" for i in range(start, min(people, start + 100)))
            body = {
                "agent_id": config.dingtalk_agentid,
                "userid_list": users,
                "msg": {"msgtype": "text", "text": {"content": f"会议通知 第{start}批"}},
            }
            answer = await client.post(
                "/dingtalk/topapi/message/corpconversation/asyncsend_v2", params={"access_token": token}, json=body
            )
            assert answer.json()["errcode"] == 0
        seconds = time.perf_counter() - started
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        counts = (await client.get("/_sandbox/counts")).json()
    return {
        "people": people,
        "sandbox_heap_mb": round(held / 2**20, 1),
        "rss_growth_mb": round(rss_mb() - rss_before, 1),
        "accepted": counts["accepted"],
        "kept": counts.get("kept"),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=100_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.people))))


if __name__ == "__main__":
    main()
