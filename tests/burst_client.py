"""A bare HTTP/1.1 burst client, light to import: the overload test runs it in a spawned process."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

BURST = 200


async def timed_get(host: str, port: int, path: str, key: str) -> tuple[int, float, str | None]:
    """One GET on its own connection (a bare HTTP/1.1 client: httpx would cost more CPU than the server)."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    writer.write(request.encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    took = time.monotonic() - started
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in head[1:] if ": " in line)
    return int(head[0].split(" ")[1]), took, headers.get("retry-after")


def flood(url: str, key: str, in_flight: Any, results: Any) -> None:
    """BURST requests at once, from a process of its own; `in_flight` is set while they are in flight."""

    async def burst() -> list[Any]:
        parsed = httpx.URL(url)
        host, port, path = parsed.host, parsed.port or 80, parsed.raw_path.decode()
        flood = [asyncio.create_task(timed_get(host, port, path, key)) for _ in range(BURST)]
        await asyncio.sleep(0.2)  # the burst is in flight: its share is busy, the rest wait or are refused
        in_flight.set()
        answers = await asyncio.gather(*flood, return_exceptions=True)
        return [repr(a) if isinstance(a, BaseException) else a for a in answers]

    results.put(asyncio.run(burst()))
