"""Run an ASGI app with uvicorn on a loopback port in a background thread (tests, bench, demo)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass
class RunningServer:
    """A server started by `run_in_thread`; `url` has no trailing slash."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, wait_s: float = 10.0) -> None:
        """Ask the server to exit and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(wait_s)


def bind_loopback(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A bound listening socket (port 0 = ephemeral), so the URL is known before the app is built."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def run_in_thread(
    app: Any, host: str = "127.0.0.1", port: int = 0, start_timeout: float = 10.0, sock: socket.socket | None = None
) -> RunningServer:
    """Start `app` on host:port (0 = an ephemeral port), or on `sock`; return once it accepts connections."""
    sock = sock or bind_loopback(host, port)
    host, actual_port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=1, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="sandbox-server")
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    return RunningServer(f"http://{host}:{actual_port}", server, thread)
