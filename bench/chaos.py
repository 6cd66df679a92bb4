"""Chaos: a notice by SMS and WeChat while providers fail, a worker is SIGKILLed and Redis restarts.

The sandbox answers 30% of send requests with HTTP 5xx, 10% with 429 + Retry-After and holds 10%
past the adapters' timeout; one arq worker is SIGKILLed at a random moment (a replacement starts,
as a supervisor would) and the private Redis (its own port, no persistence) is killed and
restarted once, losing every queued job. The database is the truth and the sweeper re-enqueues,
so `lost` (requested minus delivered or permanently failed) must be 0. `duplicates` counts
people the sandbox accepted a message for more than once on one channel: those come from
requests that timed out after the provider had accepted them (reported as `uncertain`).

    .venv/bin/python bench/chaos.py [--subscribers 2000] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter

import httpx
from notice_harness import build_stack, delivery_counts, post_notice, seed

FINAL = ("delivered", "failed", "cancelled", "unknown")
PIPELINE = {
    "GOVCONNECT_NOTICES__RETRY_BASE_SECONDS": "0.5",
    "GOVCONNECT_NOTICES__RETRY_MAX_SECONDS": "8",
    "GOVCONNECT_NOTICES__CLAIM_TIMEOUT_SECONDS": "30",
    "GOVCONNECT_NOTICES__SEND_CHUNK": "50",
}


def inject_faults(sandbox_url: str) -> None:
    """30% 5xx, 10% 429 with Retry-After, 10% held past the client timeout, on both providers."""
    for provider in ("aliyun_sms", "wechat_mp"):
        for fault in (
            {"kind": "http_5xx", "rate": 0.3, "status": 503},
            {"kind": "rate_limit", "rate": 0.1, "retry_after": 1},
            {"kind": "timeout", "rate": 0.1, "seconds": 12},
        ):
            r = httpx.post(f"{sandbox_url}/_sandbox/faults", json={"provider": provider, "target": "send", **fault})
            r.raise_for_status()


def duplicates(sandbox_url: str) -> tuple[int, int]:
    """(extra accepted messages per person and channel, accepted total) from the sandbox's record."""
    messages = httpx.get(f"{sandbox_url}/_sandbox/messages", params={"limit": 10**7}, timeout=60).json()["messages"]
    accepted = Counter((m["provider"], m["recipient"]) for m in messages if not m.get("error"))
    return sum(n - 1 for n in accepted.values() if n > 1), sum(accepted.values())


def run(args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(args.seed)  # noqa: S311 - chaos timing, not security
    stack = build_stack(2, embedded=False, private_redis=True, report_delay=0.2, pipeline=PIPELINE)
    events: list[str] = []
    try:
        key = seed(stack, args.subscribers)
        inject_faults(stack.sandbox_url)
        requested = args.subscribers * 2
        started = time.monotonic()
        notice = post_notice(stack, key, "bench-chaos")
        kill_at = started + rng.uniform(2, 8)
        redis_at = started + rng.uniform(10, 20)
        killed = redis_restarted = False
        counts: dict[str, int] = {}
        deadline = started + args.timeout
        while time.monotonic() < deadline:
            now = time.monotonic()
            if not killed and now >= kill_at:
                stack.kill("worker1")
                stack.start("worker3", ["worker"])
                events.append(f"SIGKILL worker1 at {now - started:.1f}s, replacement started")
                killed = True
            if not redis_restarted and now >= redis_at:
                stack.restart_redis()
                events.append(f"Redis killed and restarted at {now - started:.1f}s (queue emptied)")
                redis_restarted = True
            for name, proc in list(stack.procs.items()):
                if name.startswith("worker") and name != "worker1" and proc.poll() is not None:
                    stack.start(name, ["worker"])  # a supervisor restarts a worker that crashed
                    events.append(f"{name} exited ({proc.returncode}) at {now - started:.1f}s, restarted")
            counts = delivery_counts(stack, notice["id"])
            if killed and redis_restarted and sum(counts.get(s, 0) for s in FINAL) >= requested:
                break
            time.sleep(1)
        seconds = time.monotonic() - started
        extra, accepted = duplicates(stack.sandbox_url)
        conninfo = stack.db_url.replace("postgresql+psycopg://", "postgresql://")
        import psycopg

        with psycopg.connect(conninfo) as conn:
            uncertain = conn.execute("SELECT count(*) FROM delivery WHERE uncertain").fetchone()[0]  # type: ignore[index]
            attempts = conn.execute("SELECT coalesce(sum(attempts), 0) FROM delivery").fetchone()[0]  # type: ignore[index]
        delivered, failed = counts.get("delivered", 0), counts.get("failed", 0)
        return {
            "requested": requested,
            "delivered": delivered,
            "permanently_failed": failed,
            "lost": requested - delivered - failed,
            "duplicates": extra,
            "uncertain": int(uncertain),
            "provider_accepted": accepted,
            "attempts": int(attempts),
            "by_status": counts,
            "seconds": round(seconds, 1),
            "events": events,
        }
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=600)
    print(json.dumps(run(parser.parse_args()), ensure_ascii=False))


if __name__ == "__main__":
    main()
