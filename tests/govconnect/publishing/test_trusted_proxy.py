"""X-Forwarded-For is believed only from the proxies in FORWARDED_ALLOW_IPS (default: none)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from starlette.types import Receive, Scope, Send

from govconnect.cli.server import proxy_options
from govconnect.settings import Settings


async def echo_client(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the client address the server settled on (what client_ip() reads)."""
    if scope["type"] != "http":
        return
    host = (scope.get("client") or ("-", 0))[0]
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": host.encode()})


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(echo_client, log_config=None, access_log=False, lifespan="off", **proxy_options(settings))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


def test_forwarded_for_is_ignored_by_default() -> None:
    assert proxy_options(Settings()) == {"proxy_headers": False}
    with serving(Settings()) as url:
        seen = httpx.get(url, headers={"X-Forwarded-For": "203.0.113.9"}).text
    assert seen == "127.0.0.1"


def test_forwarded_for_is_believed_from_a_configured_proxy() -> None:
    settings = Settings(forwarded_allow_ips="127.0.0.1")
    with serving(settings) as url:
        assert httpx.get(url, headers={"X-Forwarded-For": "203.0.113.9"}).text == "203.0.113.9"
    with serving(Settings(forwarded_allow_ips="10.9.9.9")) as url:  # another proxy: loopback is not trusted
        assert httpx.get(url, headers={"X-Forwarded-For": "203.0.113.9"}).text == "127.0.0.1"
