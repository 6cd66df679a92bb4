"""Staff audiences from the directory: department subtrees, regions and ids, by SMS and WeCom."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from contacts.models import Contact, Department
from govconnect.agencies.models import Agency
from govconnect.notices.fanout import fanout_notice
from govconnect.notices.pipeline_models import Delivery
from tests.govconnect.notices.test_pipeline import make_notice


def seed_directory(session: Session) -> dict[str, int]:
    ids: dict[str, int] = {}
    for path, parent in (
        ("市府办", None),
        ("市府办/秘书科", "市府办"),
        ("市府办/秘书科/文印室", "市府办/秘书科"),
        ("人社局", None),
    ):
        dept = Department(name=path.rsplit("/", 1)[-1], path=path, parent_id=ids.get(parent or ""))
        session.add(dept)
        session.flush()
        ids[path] = dept.id or 0
    people = [
        ("王科长", "市府办/秘书科", "13900000001", "wangkz"),
        ("李文印", "市府办/秘书科/文印室", "13900000002", None),
        ("赵主任", "市府办", "", "zhaozr"),
        ("孙局长", "人社局", "13900000004", "sunjz"),
    ]
    for name, dept, mobile, external in people:
        session.add(Contact(name=name, department_id=ids[dept], mobile=mobile, external_id=external))
    session.commit()
    return ids


async def test_meeting_notice_to_a_department_subtree(ctx: dict[str, Any], session: Session, agency: Agency) -> None:
    ids = seed_directory(session)
    notice = make_notice(
        session,
        agency,
        body="((name))（((department))）：请于明早9点到3号会议室开会。",
        channels=["sms", "wecom"],
        audience={"staff": {"departments": [ids["市府办/秘书科"]]}},
        urgency="normal",
    )
    assert await fanout_notice(ctx, notice.id) == {"created": 3}
    rows = session.exec(select(Delivery).where(Delivery.notice_id == notice.id)).all()
    assert sorted((d.channel, d.recipient) for d in rows) == [
        ("sms", "13900000001"),
        ("sms", "13900000002"),
        ("wecom", "wangkz"),
    ]
    assert {d.params["department"] for d in rows} == {"秘书科", "文印室"}
