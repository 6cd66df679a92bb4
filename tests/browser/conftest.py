"""Browser fixtures: the app served by uvicorn on an ephemeral loopback port, and Debian's Chromium."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy.engine import Engine
from sqlmodel import Session

from govconnect.app import create_app
from govconnect.citizens.subscriptions import ensure_defaults
from govconnect.settings import Settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


class LiveServer:
    """A uvicorn server in a thread; `url` is its base URL."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
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


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    """Settings whose public base URL is filled in by `live_server`."""
    return settings


@pytest.fixture
def live_app(live_settings: Settings, engine: Engine) -> Any:
    with Session(engine) as session:
        ensure_defaults(session)
        session.commit()
    return create_app(live_settings, engine=engine)


@pytest.fixture
def live_server(live_app: Any) -> Iterator[LiveServer]:
    with LiveServer(live_app) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module; Playwright's sync API owns an event loop while open, so keep it short-lived."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """Where this test saves its screenshots (gitignored)."""
    path = ARTIFACTS / request.node.name.replace("[", "-").replace("]", "")
    path.mkdir(parents=True, exist_ok=True)
    return path
