"""Issue 11 medium 8 / 5: after a broadcast, an import, a search and failing requests, no log line
(application records, uvicorn's access log of a real server, tracebacks) holds a fixture mobile
or the provider callback token."""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import Engine
from sqlmodel import Session
from uvicorn.logging import AccessFormatter

from contacts.directory import directory_index
from contacts.importer import import_file
from govconnect.agencies.service import create_agency
from govconnect.citizens.importer import import_subscribers
from govconnect.citizens.subscriptions import clean_preferences, subscribe_phone
from govconnect.providers.channel_factory import callback_token
from govconnect.settings import Settings
from tests.factories import make_key
from tests.govconnect.publishing.live import LiveServer

SUBSCRIBERS = ["13812340011", "13812340022", "15900001111"]
IMPORTED = ["13700004321", "18600001234"]
CONTACT = "13905708877"
FIXTURE_MOBILES = [*SUBSCRIBERS, *IMPORTED, CONTACT]


class AccessLogServer(LiveServer):
    """LiveServer with uvicorn's access log switched on."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        super().__init__(settings, engine, report_delay=0.05)
        config = uvicorn.Config(self.app, log_config=None, access_log=True, lifespan="on")
        self.server = uvicorn.Server(config)


@pytest.fixture
def live(settings: Settings, engine: Engine) -> Iterator[AccessLogServer]:
    with AccessLogServer(settings, engine) as server:
        yield server


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything logged, formatted as uvicorn's own access formatter and a plain formatter would."""
    buffer = io.StringIO()
    plain = logging.StreamHandler(buffer)
    plain.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    access = logging.StreamHandler(buffer)
    access.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    root, access_logger = logging.getLogger(), logging.getLogger("uvicorn.access")
    root.addHandler(plain)
    access_logger.addHandler(access)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(plain)
        access_logger.removeHandler(access)
        root.setLevel(old_level)


def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_no_mobile_or_callback_token_in_any_log(
    live: AccessLogServer,
    session: Session,
    captured: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    agency = create_agency(session, "衢州市应急管理局", "qz-yjj", "衢州市")
    prefs = clean_preferences(session, ["yjyj"], [], ["sms"])
    for phone in SUBSCRIBERS:
        subscribe_phone(session, phone, prefs)
    session.commit()
    key = make_key(session, agency, ["notices:send", "notices:read", "contacts:write", "subscribers:read"]).key
    auth = {"Authorization": f"Bearer {key}"}

    # An import: subscribers and directory contacts, with a bad row that names a number.
    report = import_subscribers(session, "phone,categories\n" + "\n".join(f"+86{p},yjyj" for p in IMPORTED) + "\n")
    session.commit()
    assert report.created == 2, report
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(
        "name,department,mobile,visibility\n"
        f"测试一,衢州市应急管理局,{CONTACT},public\n"
        f"测试二,衢州市应急管理局,0086{CONTACT}99,public\n",
        encoding="utf-8",
    )
    import_file(session, directory_index(live.settings.data_dir), csv_file)
    session.commit()

    with httpx.Client(base_url=live.url, timeout=30) as client:
        # A broadcast: the sandbox delivers and pushes its reports to /callbacks/...?token=
        sent = client.post(
            "/api/v1/notices",
            headers=auth,
            json={
                "title": "暴雨预警",
                "body": "请减少外出。",
                "category": "yjyj",
                "channels": ["sms"],
                "urgency": "urgent",
                "audience": {"subscribers": {}},
            },
        )
        assert sent.status_code == 202, sent.text
        notice_id = sent.json()["id"]
        wait_until(lambda: all(live.sms_texts(p) for p in [*SUBSCRIBERS, *IMPORTED]))
        wait_until(lambda: client.get(f"/api/v1/notices/{notice_id}", headers=auth).json()["status"] == "completed")
        # Searches with a number in the query string, on the API and the site.
        assert client.get("/api/v1/contacts/search", params={"q": CONTACT}, headers=auth).status_code == 200
        client.get("/m/search", params={"q": f"+86{CONTACT}"})
        # Failing requests: a bad contact, an unknown path with a number, a wrong callback token.
        bad = client.post("/api/v1/contacts", headers=auth, json={"name": "坏", "mobile": f"0086{CONTACT}1"})
        assert 400 <= bad.status_code < 500
        assert client.get(f"/api/v1/notices/{SUBSCRIBERS[0]}", headers=auth).status_code == 404
        assert client.post(f"/callbacks/aliyun_sms/report?token=x{SUBSCRIBERS[1]}", json=[]).status_code == 401
        client.post(
            f"/callbacks/aliyun_sms/up?token={callback_token(live.settings)}",
            json=[{"phone_number": SUBSCRIBERS[2], "content": "TD", "send_time": "2026-01-01 00:00:00"}],
        )

    token = callback_token(live.settings)
    everything = captured.getvalue() + "\n" + caplog.text
    assert "/callbacks/aliyun_sms/report?token=***" in everything  # the access log did run
    assert token not in everything
    for phone in FIXTURE_MOBILES:
        assert not re.search(re.escape(phone), re.sub(r"[ -]", "", everything)), phone
