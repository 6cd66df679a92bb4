"""Chaos: a notice by SMS and WeChat while providers fail, a worker is SIGKILLed and Redis restarts.

The sandbox answers 30% of send requests with HTTP 5xx, 10% with 429 + Retry-After and holds 10%
past the adapters' timeout; one arq worker is SIGKILLed at a random moment (a replacement starts,
as a supervisor would) and the private Redis (its own port, no persistence) is killed and
restarted once, losing every queued job. The database is the truth and the sweeper re-enqueues,
so `lost` (requested minus delivered or permanently failed) must be 0. `duplicates` counts
people the sandbox accepted a message for more than once on one channel: those come from
requests that timed out after the provider had accepted them (reported as `uncertain`).

The agency has a callback URL (a receiver in this process that answers 30% of POSTs with 503):
`callbacks_lost` counts final deliveries whose status event neither reached it nor is still owed
(a pending row being retried with backoff), and must be 0 too.

    .venv/bin/python bench/chaos.py [--subscribers 2000] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from notice_harness import build_stack, delivery_counts, post_notice, seed

FINAL = ("delivered", "failed", "cancelled", "unknown")
PIPELINE = {
    # The agency's callback receiver is on loopback over http: allowed in test mode only.
    "GOVCONNECT_TEST_MODE": "true",
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
    counts = httpx.get(f"{sandbox_url}/_sandbox/counts", timeout=60).json()
    if counts.get("received", {}) != counts.get("kept", {}):
        raise SystemExit("the sandbox forgot messages: run it with a larger GOVCONNECT_SANDBOX__KEEP_MESSAGES")
    messages = httpx.get(f"{sandbox_url}/_sandbox/messages", params={"limit": 10**7}, timeout=60).json()["messages"]
    accepted = Counter((m["provider"], m["recipient"]) for m in messages if not m.get("error"))
    return sum(n - 1 for n in accepted.values() if n > 1), sum(accepted.values())


class CallbackReceiver:
    """The agency's callback endpoint: answers 30% of POSTs with 503 and records the delivery ids it accepted."""

    def __init__(self, rng: random.Random) -> None:
        self.received: set[str] = set()
        self.posts = self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts += 1
                if rng.random() < 0.3:
                    receiver.refused += 1
                    self.send_response(503)
                else:
                    receiver.received.update(e["delivery_id"] for e in json.loads(body)["events"])
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/agency-hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def run(args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(args.seed)  # noqa: S311 - chaos timing, not security
    stack = build_stack(2, embedded=False, private_redis=True, report_delay=0.2, pipeline=PIPELINE)
    receiver = CallbackReceiver(random.Random(args.seed + 1))  # noqa: S311
    events: list[str] = []
    try:
        key = seed(stack, args.subscribers)
        import psycopg

        conninfo = stack.db_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(conninfo) as conn:
            conn.execute("UPDATE agency SET callback_url = %s", (receiver.url,))
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
        # Every final delivery's status event must reach the agency, through the 503s and the Redis restart.
        callbacks_deadline = time.monotonic() + args.callback_wait
        while True:
            with psycopg.connect(conninfo) as conn:
                final_ids = {
                    r[0] for r in conn.execute("SELECT id FROM delivery WHERE status IN ('delivered', 'failed')")
                }
                owed = conn.execute("SELECT count(*) FROM agency_callback WHERE status = 'pending'").fetchone()[0]  # type: ignore[index]
            if not final_ids - receiver.received or time.monotonic() > callbacks_deadline:
                break
            time.sleep(2)
        callback_seconds = time.monotonic() - started - seconds
        missing = sorted(final_ids - receiver.received)
        with psycopg.connect(conninfo) as conn:
            # Where the missing events' deliveries came from, to tell which path dropped them.
            missing_kinds = {
                f"{r[0]}/{r[1]}/uncertain={r[2]}/attempts={r[3]}/receipts={r[4]}/{r[5]}/report_first={r[6]}": r[7]
                for r in conn.execute(
                    "SELECT channel, status, uncertain, attempts, receipts, provider, final_at < sent_at, count(*)"
                    " FROM delivery WHERE id = ANY(%s) GROUP BY 1, 2, 3, 4, 5, 6, 7",
                    (missing,),
                )
            }
            callback_rows = {
                f"{r[0]}/{r[1]}": r[2]
                for r in conn.execute("SELECT status, last_result, count(*) FROM agency_callback GROUP BY 1, 2")
            }
            in_rows = conn.execute(
                "SELECT count(DISTINCT e->>'delivery_id') FROM agency_callback, json_array_elements(events::json) e"
                " WHERE e->>'delivery_id' = ANY(%s)",
                (missing,),
            ).fetchone()[0]  # type: ignore[index]
            uncertain = conn.execute("SELECT count(*) FROM delivery WHERE uncertain").fetchone()[0]  # type: ignore[index]
            attempts = conn.execute("SELECT coalesce(sum(attempts), 0) FROM delivery").fetchone()[0]  # type: ignore[index]
        delivered, failed = counts.get("delivered", 0), counts.get("failed", 0)
        return {
            "requested": requested,
            "delivered": delivered,
            "permanently_failed": failed,
            "lost": requested - delivered - failed,
            "duplicates": extra,
            # Lost: neither received nor owed in the database (owed ones are still being retried).
            "callbacks_lost": len(final_ids - receiver.received) - int(in_rows),
            "callbacks_pending": int(owed),
            "callbacks_missing_by_kind": missing_kinds,
            "callback_rows": callback_rows,
            "callbacks_not_yet_received_but_owed": int(in_rows),
            "callback_posts": receiver.posts,
            "callback_posts_refused": receiver.refused,
            "callback_seconds_after_sends": round(callback_seconds, 1),
            "uncertain": int(uncertain),
            "provider_accepted": accepted,
            "attempts": int(attempts),
            "by_status": counts,
            "seconds": round(seconds, 1),
            "events": events,
        }
    finally:
        stack.stop()
        receiver.server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--callback-wait", type=float, default=300, help="seconds to wait for every status event")
    print(json.dumps(run(parser.parse_args()), ensure_ascii=False))


if __name__ == "__main__":
    main()
