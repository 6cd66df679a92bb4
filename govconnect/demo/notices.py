"""Demo data for the notice pipeline: categories, a few hundred subscribers, the issue's three broadcasts."""

from __future__ import annotations

import json
import random
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from govconnect.agencies.models import ApiKey
from govconnect.agencies.service import create_agency, create_api_key, get_agency_by_code
from govconnect.citizens.models import Subscriber, SubscriberCategory, SubscriberRegion
from govconnect.clock import utcnow
from govconnect.db import session_scope
from govconnect.notices.models import Category
from govconnect.settings import Settings

CATEGORIES = [
    ("zwgk", "政务公开"),
    ("yjyj", "应急预警"),
    ("jtcx", "交通出行"),
    ("sbyl", "社保医疗"),
    ("jy", "教育"),
    ("zcjd", "政策解读"),
]
REGIONS = ["柯城区", "衢江区", "江山市", "龙游县", "常山县", "开化县"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
DEMO_SUBSCRIBERS = 300
DEMO_AGENCIES = [("qz-yjj", "衢州市应急管理局"), ("qz-rsj", "衢州市人力资源和社会保障局")]
DEMO_SCOPES = ["notices:read", "notices:send"]
# The example broadcasts the demo prints. SMS and WeChat greet each person by name; the site shows
# the public text (市民您好：…) in the audience's region (govconnect/notices/publication.py).
FLOOD_NOTICE: dict[str, Any] = {
    "title": "江山市防汛紧急预警",
    "body": "((name))您好：江山市今夜至明晨有大暴雨，请远离河道和低洼地带，注意安全。",
    "category": "yjyj",
    "urgency": "urgent",
    "channels": ["sms", "voice", "wechat", "site"],
    "audience": {"subscribers": {"categories": ["yjyj"], "regions": ["江山市"]}},
}
POLICY_NOTICE: dict[str, Any] = {
    "title": "2026年度社保缴费基数调整",
    "body": "((name))您好：2026年度社保缴费基数已调整，详情请查看政策解读。",
    "category": "sbyl",
    "channels": ["sms", "wechat", "site"],
    "audience": {"subscribers": {"categories": ["sbyl"]}},
}


def seed_categories(engine: Engine) -> None:
    """The six standard categories (idempotent)."""
    with session_scope(engine) as session:
        existing = set(session.exec(select(Category.code)).all())
        for order, (code, name) in enumerate(CATEGORIES):
            if code not in existing:
                session.add(Category(code=code, name=name, sort_order=order))


def seed_subscribers(engine: Engine, count: int = DEMO_SUBSCRIBERS) -> int:
    """Demo subscribers with reserved-looking numbers (199 0000 xxxx) across regions and categories."""
    rng = random.Random(20260601)  # noqa: S311 - demo data, reproducible
    created = 0
    with session_scope(engine) as session:
        if session.exec(select(Subscriber).where(Subscriber.source == "demo")).first() is not None:
            return 0
        for i in range(count):
            channels = rng.choice([["sms"], ["sms", "wechat"], ["sms", "voice", "wechat"], ["wechat"]])
            sub = Subscriber(
                phone=f"1990000{i:04d}",
                wechat_openid=f"o-demo-{i:05d}" if "wechat" in channels else None,
                name=rng.choice(SURNAMES) + rng.choice(["先生", "女士"]),
                channels=channels,
                source="demo",
                created_at=utcnow(),
            )
            session.add(sub)
            session.flush()
            for code in rng.sample([c for c, _ in CATEGORIES], k=rng.randint(1, 3)) + ["yjyj"]:
                if session.get(SubscriberCategory, (sub.id, code)) is None:
                    session.add(SubscriberCategory(subscriber_id=sub.id or 0, category=code))
            if rng.random() < 0.8:
                session.add(SubscriberRegion(subscriber_id=sub.id or 0, region=rng.choice(REGIONS)))
            created += 1
    return created


def _demo_key(engine: Engine, code: str, name: str, info: object) -> str:
    with session_scope(engine) as session:
        agency = get_agency_by_code(session, code) or create_agency(session, name, code, "衢州市")
        credentials = getattr(info, "credentials", None)
        if credentials is not None:  # kept across restarts (demo/credentials.py)
            return str(credentials.api_key(session, agency, DEMO_SCOPES))
        for old in session.exec(select(ApiKey).where(ApiKey.agency_id == agency.id, ApiKey.name == "demo")).all():
            if old.revoked_at is None:
                old.revoked_at = utcnow()
                session.add(old)
        return create_api_key(session, agency, DEMO_SCOPES, name="demo").key


def seed_notice_demo(engine: Engine, settings: Settings, info: object) -> None:
    """DEMO_HOOKS entry: categories, subscribers, two sending agencies and example broadcasts in the banner."""
    seed_categories(engine)
    seed_subscribers(engine)
    keys = {code: _demo_key(engine, code, name, info) for code, name in DEMO_AGENCIES}
    flood, policy = FLOOD_NOTICE, POLICY_NOTICE
    notes = getattr(info, "notes", None)
    if notes is None:
        return
    # Under `serve --demo` the sandbox pushes to the gateway itself: that is the address to call.
    base = (settings.sandbox.callback_base_url or settings.public_base_url).rstrip("/")
    notes.append(f"notices 应急管理局 key: {keys['qz-yjj']}   人社局 key: {keys['qz-rsj']}")
    for key, body, label in ((keys["qz-yjj"], flood, "flood"), (keys["qz-rsj"], policy, "policy")):
        notes.append(
            # No fixed Idempotency-Key: with one, running the printed command again would send nothing.
            f"{label}: curl -X POST -H 'Authorization: Bearer {key}' "
            f"-H 'Content-Type: application/json' -d '{json.dumps(body, ensure_ascii=False)}' "
            f"{base}/api/v1/notices"
        )
    notes.append("each run of these sends again; add -H 'Idempotency-Key: <your id>' to make a retry safe")
    notes.append("normal-urgency SMS/voice wait for 07:00 Beijing time during quiet hours (22:00-07:00)")
    notes.append(
        'meeting (staff, SMS + WeCom): the same call with "channels": ["sms", "wecom"] and '
        '"audience": {"staff": {"departments": [<department ids from /api/v1 directory>]}}'
    )
    notes.append(
        '浙政钉 (DingTalk) work notice to staff: "channels": ["dingtalk"] with the same staff audience; '
        "progress shows delivered, then read (the sandbox's users read it after "
        f"{settings.sandbox.dingtalk_read_after:g} s)"
    )
