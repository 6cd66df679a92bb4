"""The gateway served by uvicorn on an ephemeral loopback port, with the provider sandbox mounted in it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import httpx
import uvicorn
from sqlalchemy.engine import Engine
from sqlmodel import Session

from govconnect.app import create_app
from govconnect.citizens.subscriptions import ensure_defaults
from govconnect.providers.sandbox import use_demo_sandbox
from govconnect.settings import Settings


class LiveServer:
    """A uvicorn server in a thread; `url` is its base URL, `sandbox` the mounted provider sandbox's."""

    def __init__(self, settings: Settings, engine: Engine, report_delay: float = 0.2) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        settings = settings.model_copy(
            update={
                "public_base_url": self.url,
                "sandbox": settings.sandbox.model_copy(update={"report_delay": report_delay}),
                "notices": settings.notices.model_copy(update={"sweep_interval_seconds": 0.3}),
            }
        )
        self.settings = use_demo_sandbox(settings, "127.0.0.1", port)
        self.sandbox = self.url + self.settings.sandbox.mount_path
        with Session(engine) as session:
            ensure_defaults(session)
            session.commit()
        self.app: Any = create_app(self.settings, engine=engine)
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def sms_texts(self, phone: str) -> list[str]:
        """Texts the sandbox delivered to this phone."""
        r = httpx.get(f"{self.sandbox}/_sandbox/sms/inbox", params={"phone": phone}, timeout=5)
        r.raise_for_status()
        return [m["text"] for m in r.json()["messages"]]

    def reply_sms(self, phone: str, content: str) -> None:
        """The phone replies; the sandbox pushes SmsUp to the gateway's callback and waits for the answer."""
        r = httpx.post(
            f"{self.sandbox}/_sandbox/sms/reply", json={"phone": phone, "content": content, "wait": True}, timeout=10
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == 200, r.json()
