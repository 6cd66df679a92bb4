"""One notice to N subscribers by SMS and WeChat, end to end through the provider sandbox.

PostgreSQL (private database), Redis, the sandbox, the API and 2 arq workers, each its own process;
`--embedded` runs the API alone with its in-process worker. Measures seconds from accept until every
delivery is final (delivered or failed, receipts included), deliveries per second, each process's
peak RSS and API read latency (GET the notice with progress, and the notice list) while it runs.

    .venv/bin/python bench/fanout.py [--subscribers 100000] [--workers 2] [--embedded] [--channels sms,wechat]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx
import psutil
from notice_harness import build_stack, delivery_counts, percentile, post_notice, seed

FINAL = ("delivered", "failed", "cancelled", "unknown")


async def read_load(
    api_url: str, key: str, notice_id: str, stop: asyncio.Event, latencies: list[float], progress: dict[str, int]
) -> None:
    """Steady API reads (about 20/s) while the fan-out runs; keeps the notice's latest progress."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=30) as client:
        i = 0
        while not stop.is_set():
            path = f"/api/v1/notices/{notice_id}" if i % 2 == 0 else "/api/v1/notices?limit=20"
            start = time.perf_counter()
            r = await client.get(path)
            latencies.append((time.perf_counter() - start) * 1000)
            r.raise_for_status()
            if i % 2 == 0:
                counts: dict[str, int] = {}
                for channel in r.json()["progress"].values():
                    for status in (*FINAL, "sent"):
                        counts[status] = counts.get(status, 0) + int(channel.get(status, 0))
                progress.clear()
                progress.update(counts)
            i += 1
            await asyncio.sleep(0.05)


async def run(args: argparse.Namespace) -> dict[str, object]:
    stack = build_stack(
        args.workers,
        args.embedded,
        private_redis=False,
        report_delay=args.report_delay,
        nice=args.nice,
        callbacks_process=args.callbacks_process,
    )
    try:
        key = seed(stack, args.subscribers)
        channels = tuple(args.channels.split(","))
        expected = args.subscribers * len(channels)
        accepted_at = time.perf_counter()
        machine_before = psutil.cpu_times()
        notice = post_notice(stack, key, "bench-fanout", channels)
        stop = asyncio.Event()
        latencies: list[float] = []
        # Progress as an agency sees it (GET the notice; the API recounts a large notice every 1 to
        # 5 s, so the end is seen that much late at most): a count of the script's own every half
        # second cost PostgreSQL a tenth of the machine at 100,000.
        progress: dict[str, int] = {}
        reader = asyncio.create_task(read_load(stack.api_url, key, notice["id"], stop, latencies, progress))
        counts: dict[str, int] = {}
        timeline: list[tuple[float, int, int]] = []  # (seconds, accepted by provider, final)
        deadline = time.monotonic() + args.timeout
        last_progress = time.monotonic()
        while time.monotonic() < deadline:
            stack.sample_rss()
            counts = dict(progress)
            done = sum(counts.get(s, 0) for s in FINAL)
            timeline.append((round(time.perf_counter() - accepted_at, 1), done + counts.get("sent", 0), done))
            if done >= expected:
                break
            if len(timeline) > 1 and done > timeline[-2][2]:
                last_progress = time.monotonic()
            if time.monotonic() - last_progress > args.stall:
                break  # nothing became final for a while: report what is stuck rather than wait
            await asyncio.sleep(0.5)
        seconds = time.perf_counter() - accepted_at
        machine_after = psutil.cpu_times()
        idle = (machine_after.idle + machine_after.iowait) - (machine_before.idle + machine_before.iowait)
        total = sum(machine_after) - sum(machine_before)
        stop.set()
        await reader
        counts = await asyncio.to_thread(delivery_counts, stack, notice["id"])  # exact, at the end
        workers = {k: round(v, 1) for k, v in stack.peak_rss.items() if k.startswith("worker")}
        final = sum(counts.get(s, 0) for s in FINAL)
        return {
            "mode": "embedded" if args.embedded else f"arq x{args.workers}",
            "nice": args.nice,
            "callbacks_process": args.callbacks_process and not args.embedded,
            "channels": list(channels),
            "recipients": args.subscribers,
            "deliveries": expected,
            "delivered": counts.get("delivered", 0),
            "failed": counts.get("failed", 0),
            "unfinished": expected - final,
            "by_status": counts,
            "seconds": round(seconds, 2),
            "deliveries_per_s": round(final / seconds, 1),
            "worker_rss_mb": max(workers.values()) if workers else round(stack.peak_rss.get("api", 0.0), 1),
            "worker_rss_mb_each": workers,
            "api_rss_mb": round(stack.peak_rss.get("api", 0.0), 1),
            "sandbox_rss_mb": round(stack.peak_rss.get("sandbox", 0.0), 1),
            "callbacks_rss_mb": round(stack.peak_rss.get("callbacks", 0.0), 1) or None,
            "cpu_seconds": {k: round(v, 1) for k, v in stack.cpu_seconds.items()},
            # Busy share of all cores while it ran: PostgreSQL, Redis and this script included.
            "machine_busy_pct": round(100 * (1 - idle / total), 1) if total else None,
            "seconds_to_all_sent": next((t for t, sent, _ in timeline if sent >= expected), None),
            "timeline": timeline[:: max(1, len(timeline) // 12)],
            "api_reads": len(latencies),
            "api_p50_ms": round(percentile(latencies, 50), 1),
            "api_p99_ms": round(percentile(latencies, 99), 1),
        }
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--embedded", action="store_true", help="API with its in-process worker, no arq")
    parser.add_argument("--report-delay", type=float, default=0.2)
    parser.add_argument("--channels", default="sms,wechat", help="comma-separated: sms, wechat")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument(
        "--nice", type=int, default=0, help="run the workers and the sandbox at this lower CPU priority (API at 0)"
    )
    parser.add_argument(
        "--callbacks-process",
        action="store_true",
        help="provider callbacks to a second `serve` process, not the one answering the API reads",
    )
    parser.add_argument("--stall", type=float, default=90, help="stop when nothing finishes for this long")
    result = asyncio.run(run(parser.parse_args()))
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
