"""CMPP 2.0 throughput: single-part messages per second from one process through the ISMG simulator.

The simulator runs in a child process (so the figure is the client's, not a shared event loop's),
answers every SUBMIT and sends a DELIVRD report for each; the client keeps its window of 16.
Run: `.venv/bin/python bench/channels_cmpp.py [--messages 5000]`; the last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Run as `python bench/channels_cmpp.py`, bench/ comes first on sys.path and bench/channels.py
# would shadow the `channels` package.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from channels.base import OutboundMessage, Outcome, Receipt  # noqa: E402
from channels.cmpp import CmppChannel, CmppConfig  # noqa: E402

SOURCE_ADDR = "901234"
SECRET = "sandbox-secret"  # noqa: S105 - the simulator's demo secret
BATCH = 100
CONCURRENT_BATCHES = 4


async def measure_cmpp_async(port: int, messages: int = 5000) -> dict[str, Any]:
    """Send `messages` single-part SMS through the simulator on `port`."""
    receipts = 0
    all_receipts = asyncio.Event()

    async def on_receipt(receipt: Receipt) -> None:
        nonlocal receipts
        receipts += receipt.reference is not None and receipt.delivered
        if receipts == messages:
            all_receipts.set()

    config = CmppConfig(
        port=port,
        source_addr=SOURCE_ADDR,
        shared_secret=SECRET,
        service_id="GOVSMS",
        src_id="10690001",
        sign_name="衢州发布",
    )
    channel = CmppChannel(config, on_receipt=on_receipt)
    try:
        await channel.connect()
        queue = [
            OutboundMessage(reference=f"b-{i}", recipient=f"138{i:08d}", text=f"第{i}号测试通知：明日停水。")
            for i in range(messages)
        ]
        batches = [queue[i : i + BATCH] for i in range(0, len(queue), BATCH)]
        accepted = 0

        async def worker() -> None:
            nonlocal accepted
            while batches:
                results = await channel.send(batches.pop())
                accepted += sum(r.outcome == Outcome.ACCEPTED for r in results)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENT_BATCHES)))
        elapsed = time.perf_counter() - start
        try:
            await asyncio.wait_for(all_receipts.wait(), 10)
        except TimeoutError:
            pass
    finally:
        await channel.aclose()
    return {
        "msgs_per_s": round(accepted / elapsed, 1),
        "messages": messages,
        "accepted": accepted,
        "receipts_matched": receipts,
        "seconds": round(elapsed, 3),
        "window": config.window,
    }


def measure_cmpp(messages: int = 5000) -> dict[str, Any]:
    """`{"msgs_per_s": ...}` for 5,000 single-part messages against a simulator in a child process."""
    proc = subprocess.Popen(  # noqa: S603 - our own module
        [sys.executable, "-m", "channels.sandbox.cmpp_server", "--port", "0", "--report-delay", "0.01"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        port = int(json.loads(proc.stdout.readline())["cmpp_simulator"]["port"])
        return asyncio.run(measure_cmpp_async(port, messages))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    print(json.dumps({"cmpp": measure_cmpp(args.messages)}))
