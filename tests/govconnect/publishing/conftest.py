import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from channels.sandbox import SandboxState, create_sandbox_app
from channels.sandbox.runner import run_in_thread
from govconnect.agencies.models import Agency
from govconnect.agencies.service import create_agency, create_staff
from govconnect.app import create_app
from govconnect.citizens.subscriptions import ensure_defaults
from govconnect.providers.sandbox import point_at_sandbox, sandbox_config
from govconnect.settings import Settings


@dataclass
class SandboxHandle:
    """The provider sandbox on a loopback port, and helpers to read what phones received."""

    url: str
    state: SandboxState

    def sms_texts(self, phone: str) -> list[str]:
        response = httpx.get(f"{self.url}/_sandbox/sms/inbox", params={"phone": phone}, timeout=5)
        response.raise_for_status()
        return [m["text"] for m in response.json()["messages"]]

    def last_code(self, phone: str) -> str:
        texts = self.sms_texts(phone)
        assert texts, f"no SMS reached {phone}"
        match = re.search(r"(?<!\d)\d{6}(?!\d)", texts[-1])
        assert match, texts[-1]
        return match.group(0)

    def fault(self, provider: str, kind: str, **options: Any) -> None:
        body = {"provider": provider, "kind": kind, **options}
        response = httpx.post(f"{self.url}/_sandbox/faults", json=body, timeout=5)
        assert response.status_code == 201, response.text


@pytest.fixture
def sandbox(settings: Settings) -> Iterator[SandboxHandle]:
    state = SandboxState(sandbox_config(settings, ""))
    server = run_in_thread(create_sandbox_app(state=state))
    try:
        yield SandboxHandle(server.url, state)
    finally:
        server.stop()


@pytest.fixture
def app(settings: Settings, engine: Engine, sandbox: SandboxHandle) -> Any:
    with Session(engine) as session:
        ensure_defaults(session)
        session.commit()
    return create_app(point_at_sandbox(settings, sandbox.url), engine=engine)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def agency(session: Session) -> Agency:
    agency = create_agency(session, "衢州市应急管理局", "qz-yjj", "衢州市")
    session.commit()
    return agency


@pytest.fixture
def operator(session: Session, agency: Agency) -> str:
    create_staff(session, "wangli", agency, "operator", "correct-horse-1", "王丽")
    session.commit()
    return "wangli"
