"""Inbound SMS replies: stored and linked to the notice, masked, owed to the agency; meeting notices (回执) tallied."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from channels.base import InboundReply
from govconnect.agencies.models import Agency
from govconnect.clock import utcnow
from govconnect.notices.pipeline_models import AgencyCallback, Delivery
from govconnect.notices.providers import _apply_reply
from govconnect.notices.replies import attendance_answer
from govconnect.notices.reply_models import NoticeReply
from tests.factories import make_key, make_subscriber
from tests.govconnect.notices.test_end_to_end import Gateway, gateway, wait_progress  # noqa: F401
from tests.govconnect.notices.test_notices_api import notice_body

PEOPLE = ("13800000001", "13800000002", "13800000003", "13800000004")


def reply(client: httpx.Client, gw: Gateway, phone: str, text: str) -> None:
    r = client.post(f"{gw.sandbox}/_sandbox/sms/reply", json={"phone": phone, "content": text, "wait": True})
    assert r.status_code == 200 and r.json()["status"] == 200, r.text


def test_meeting_notice_replies_are_tallied_masked_exported_and_called_back(
    gateway: Gateway,  # noqa: F811
    session: Session,
    engine: Engine,
    agency: Agency,
    auth: dict[str, str],
) -> None:
    for phone in PEOPLE:
        make_subscriber(session, phone, None, regions=["江山市"], channels=["sms"])
    agency.callback_url = "http://127.0.0.1:9/cb"  # nothing listens: the callback stays owed
    session.add(agency)
    session.commit()
    body = notice_body(
        title="防汛会商", body="明早9点在应急局三楼会商防汛工作。", channels=["sms"], replies="attendance"
    )
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        r = client.post("/api/v1/notices", json=body, headers=auth)
        assert r.status_code == 202, r.text
        notice = r.json()
        assert notice["replies"] == "attendance" and "回复1确认参加" in notice["body"]
        wait_progress(client, f"/api/v1/notices/{notice['id']}", auth, done=4)
        inbox = client.get(f"{gateway.sandbox}/_sandbox/sms/inbox", params={"phone": PEOPLE[0]}).json()
        assert "回复1确认参加，回复2表示不参加" in str(inbox)  # the SMS asks the question
        reply(client, gateway, PEOPLE[0], "1")
        reply(client, gateway, PEOPLE[1], "２")  # a full-width digit from a Chinese keyboard
        reply(client, gateway, PEOPLE[2], "请问在几楼？")
        reply(client, gateway, PEOPLE[0], "2")  # changed their mind: the latest answer counts
        reply(client, gateway, PEOPLE[3], "TD")  # an opt-out is not a reply
        got = client.get(f"/api/v1/notices/{notice['id']}/replies", headers=auth)
        assert got.status_code == 200, got.text
        page = got.json()
        assert page["total"] == 4
        assert [i["answer"] for i in page["items"]] == ["attend", "decline", None, "decline"]
        assert page["items"][2]["text"] == "请问在几楼？"
        assert page["items"][0]["sender"] == "138****0001"  # this key may not see subscribers
        tally = page["attendance"]
        assert (tally["attend"], tally["decline"], tally["other"], tally["unanswered"]) == (0, 2, 1, 2)
        assert sorted(p["recipient"] for p in tally["not_answered"]) == ["138****0003", "138****0004"]
        seer = {"Authorization": f"Bearer {make_key(session, agency, ['notices:read', 'subscribers:read']).key}"}
        shown = client.get(f"/api/v1/notices/{notice['id']}/replies", headers=seer).json()
        assert shown["items"][0]["sender"] == PEOPLE[0]
        exported = client.get(f"/api/v1/notices/{notice['id']}/replies", params={"format": "csv"}, headers=auth)
        rows = list(csv.reader(io.StringIO(exported.text.lstrip("\ufeff"))))
        assert rows[0][:3] == ["id", "delivery_id", "sender"] and len(rows) == 5
        assert rows[3][3] == "请问在几楼？" and rows[1][2] == "138****0001"
        # Another agency does not see them.
        other = {"Authorization": f"Bearer {make_key(session, make_other(session), ['notices:read']).key}"}
        assert client.get(f"/api/v1/notices/{notice['id']}/replies", headers=other).status_code == 404
    with Session(engine) as s:
        events = [e for row in s.exec(select(AgencyCallback)).scalars() for e in row.events if e.get("type") == "reply"]
    assert len(events) == 4 and {e["notice_id"] for e in events} == {notice["id"]}
    assert "13800000001" not in str(events)  # events name the delivery, never the number


def make_other(session: Session) -> Agency:
    from govconnect.agencies.service import create_agency

    agency = create_agency(session, "另一个局", "qz-other", "衢州市")
    session.commit()
    return agency


def test_cmpp_reply_links_to_the_last_notice_within_a_week(
    gateway: Gateway,  # noqa: F811
    session: Session,
    engine: Engine,
    agency: Agency,
    auth: dict[str, str],
) -> None:
    make_subscriber(session, PEOPLE[0], None, regions=["江山市"], channels=["sms"])
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        ids = []
        for title in ("旧通知", "新通知"):
            r = client.post("/api/v1/notices", json=notice_body(title=title, channels=["sms"]), headers=auth)
            ids.append(r.json()["id"])
            wait_progress(client, f"/api/v1/notices/{ids[-1]}", auth, done=1)
    old, new = ids
    with engine.begin() as conn:  # the older one went out yesterday
        conn.execute(
            update(Delivery.__table__)
            .where(Delivery.__table__.c.notice_id == old)
            .values(sent_at=utcnow() - timedelta(days=1))  # type: ignore[attr-defined]
        )
    secret = gateway.settings.secret_key.get_secret_value()
    _apply_reply(engine, InboundReply(sender="+86 138 0000 0001", text="收到", provider="cmpp"), secret)
    with engine.begin() as conn:  # a week later, nothing is linked
        conn.execute(update(Delivery.__table__).values(sent_at=utcnow() - timedelta(days=8)))  # type: ignore[attr-defined]
    _apply_reply(engine, InboundReply(sender=PEOPLE[0], text="还在吗", provider="cmpp"), secret)
    _apply_reply(engine, InboundReply(sender="13911112222", text="你好", provider="cmpp"), secret)  # never sent to
    with Session(engine) as s:
        rows = s.exec(select(NoticeReply).order_by(NoticeReply.id)).scalars().all()  # type: ignore[arg-type]
    assert [(r.notice_id, r.sender, r.text, r.answer) for r in rows] == [
        (new, PEOPLE[0], "收到", ""),  # not a meeting notice: no answer is read from it
        (None, PEOPLE[0], "还在吗", ""),
        (None, "13911112222", "你好", ""),
    ]


def test_attendance_answers() -> None:
    assert [attendance_answer(t) for t in ("1", " 2 ", "１", "2。", "12", "是", "")] == [
        "attend",
        "decline",
        "attend",
        "decline",
        "",
        "",
        "",
    ]
