"""Demo data for the publishing surfaces: categories, regions and a few public notices to look at."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from govconnect.agencies.service import get_agency_by_code
from govconnect.citizens.subscriptions import ensure_defaults
from govconnect.clock import utcnow
from govconnect.db import session_scope
from govconnect.notices.models import Notice
from govconnect.settings import Settings

DEMO_NOTICES: tuple[tuple[str, str, str, list[str], str], ...] = (
    (
        "关于2026年城乡居民医保集中缴费的通知",
        "2026年度城乡居民基本医疗保险集中缴费期为9月1日至12月31日，可通过浙里办、支付宝或各乡镇（街道）便民服务中心缴费。",
        "sbyl",
        [],
        "normal",
    ),
    (
        "衢江大桥夜间封闭施工交通管制",
        "11月26日至28日每晚22时至次日5时，衢江大桥全封闭施工，请过往车辆绕行西区大桥。",
        "jtcx",
        ["衢江区", "柯城区"],
        "normal",
    ),
    (
        "开化县山洪灾害橙色预警",
        "受强降雨影响，开化县山区发生山洪灾害可能性大，请危险区域群众及时转移，远离河道。",
        "yjyj",
        ["开化县"],
        "urgent",
    ),
)


def seed_publishing_demo(engine: Engine, settings: Settings, info: Any) -> None:
    """Seed categories and regions, and (once) three public demo notices; tell the newcomer where to look."""
    with session_scope(engine) as session:
        ensure_defaults(session)
        agency = get_agency_by_code(session, getattr(info, "agency_code", ""))
        has_public = session.exec(select(Notice.id).where(Notice.public == True).limit(1)).first()  # noqa: E712
        if agency is not None and agency.id is not None and has_public is None:
            for age, (title, body, category, regions, urgency) in enumerate(DEMO_NOTICES):
                session.add(
                    Notice(
                        agency_id=agency.id,
                        title=title,
                        body=body,
                        category=category,
                        regions=list(regions),
                        urgency=urgency,
                        channels=["site", "tv"],
                        public=True,
                        status="completed",
                        created_at=utcnow() - timedelta(minutes=10 * (len(DEMO_NOTICES) - age)),
                    )
                )
    notes = getattr(info, "notes", None)
    if isinstance(notes, list):
        notes.append("console 控制台: /console/  (sign in as the operator above 用上面的操作员登录)")
        notes.append("site 手机站:   /m/        TV 电视页: /tv/")
        notes.append("feeds 订阅源: /feeds/tv.xml  /feeds/tv.atom  /feeds/tv.json")
