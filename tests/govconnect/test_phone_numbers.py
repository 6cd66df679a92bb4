"""One way to read a mainland mobile number, everywhere; `recipient_count` counts who is actually sent to."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from contacts.models import Contact, Department
from contacts.phones import normalise_mobile
from govconnect.agencies.models import Agency
from govconnect.citizens.code_limits import CodeBudget
from govconnect.citizens.importer import import_subscribers
from govconnect.citizens.models import Subscriber
from govconnect.citizens.subscriptions import request_code
from govconnect.errors import RateLimited
from govconnect.notices.pipeline_models import Delivery
from tests.factories import make_categories, make_subscriber
from tests.govconnect.notices.conftest import (  # noqa: F401 - fixtures
    agency,
    app_client,
    auth,
    fake_providers,
    pipeline_settings,
    wait_for,
)

SAME_NUMBER = [
    "13800001111",
    "１３８００００１１１１",  # full-width
    "١٣٨٠٠٠٠١١١١",  # Arabic-Indic
    "۱۳۸۰۰۰۰۱۱۱۱",  # Extended Arabic-Indic
    "+86 138-0000-1111",
    "＋８６ １３８ ００００ １１１１",
    "0086 13800001111",
    "8613800001111",
    "(138) 0000.1111",
]


@pytest.mark.parametrize("written", SAME_NUMBER)
def test_every_way_of_writing_a_number_is_one_number(written: str) -> None:
    assert normalise_mobile(written) == "13800001111"


@pytest.mark.parametrize(
    "bad", ["", "12345", "12800001111", "138000011112", "+1 138 0000 1111", "138o0001111", "13800001111ext", "x" * 100]
)
def test_what_is_not_a_mainland_mobile_is_none(bad: str) -> None:
    assert normalise_mobile(bad) is None


def test_verification_code_cooldown_holds_for_every_spelling(session: Session) -> None:
    budget = CodeBudget("1/minute", "100/minute")
    number, _code = request_code(session, "secret", SAME_NUMBER[0], "10.0.0.1", budget=budget)
    assert number == "13800001111"
    for step, written in enumerate(SAME_NUMBER[1:], start=2):
        with pytest.raises(RateLimited) as caught:
            request_code(session, "secret", written, f"10.0.0.{step}", budget=budget)
        assert caught.value.code == "code_too_soon", written


def test_imports_store_one_canonical_number(session: Session) -> None:
    make_categories(session)
    rows = "\n".join(f"{written},yjyj" for written in SAME_NUMBER)
    report = import_subscribers(session, "phone,categories\n" + rows + "\n")
    assert (report.created, report.updated, report.errors) == (1, len(SAME_NUMBER) - 1, [])
    assert [s.phone for s in session.exec(select(Subscriber)).all()] == ["13800001111"]


def test_recipient_count_is_who_is_sent_to(
    app_client: TestClient,  # noqa: F811
    session: Session,
    auth: dict[str, str],  # noqa: F811
    agency: Agency,  # noqa: F811
) -> None:
    make_subscriber(session, "13800000001", None, channels=["sms"])
    make_subscriber(session, None, "oid-only", channels=["wechat"])  # no address for SMS
    department = Department(name="值班室", path="值班室")
    session.add(department)
    session.flush()
    session.add(Contact(name="无手机", department_id=department.id or 0, mobile=""))
    session.add(Contact(name="有手机", department_id=department.id or 0, mobile="13900000009"))
    session.commit()
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "13800000002")
    csv_text = f"phone\n13800000001\n+86 138-0000-0002\n13800000002\n{full_width}\n١٣٨٠٠٠٠٠٠٠٣\n12345\n"
    notice = {
        "title": "通知",
        "body": "今晚有雨。",
        "category": "yjyj",
        "urgency": "urgent",
        "channels": ["sms"],
        "audience": {"subscribers": {}, "csv": csv_text, "staff": {"departments": [department.id]}},
    }
    accepted = app_client.post("/api/v1/notices", json=notice, headers=auth)
    assert accepted.status_code == 202, accepted.text
    notice_id = accepted.json()["id"]
    # Before fan-out: each source counts its reachable, valid, distinct people (1 + 3 + 1).
    assert accepted.json()["recipient_count"] == 5

    def counted() -> bool:
        return app_client.get(f"/api/v1/notices/{notice_id}", headers=auth).json()["recipient_count"] == 4

    wait_for(counted)  # after fan-out: 13800000001 was in two sources and is sent one message
    sent = sorted(d.recipient for d in session.exec(select(Delivery).where(Delivery.notice_id == notice_id)).all())
    assert sent == ["13800000001", "13800000002", "13800000003", "13900000009"]
