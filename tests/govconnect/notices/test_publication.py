"""The pipeline's side of publishing: when a notice went out, and the text a public post carries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.notices.fanout import fanout_notice
from govconnect.notices.models import Notice
from govconnect.notices.sending import send_deliveries
from tests.factories import make_subscriber
from tests.govconnect.notices.fakes import ScriptedChannel
from tests.govconnect.notices.test_pipeline import deliveries, make_notice


async def test_a_scheduled_notice_is_published_when_its_fan_out_runs_and_weibo_posts_public_text(
    ctx: dict[str, Any], session: Session, agency: Agency, fake_providers: dict[str, ScriptedChannel]
) -> None:
    make_subscriber(session, "13400000021", None, channels=["sms"], name="李四")
    send_at = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    notice = make_notice(
        session,
        agency,
        channels=["sms", "site", "weibo"],
        status="scheduled",
        public=True,
        created_at=send_at - timedelta(days=2),
        send_at=send_at,
    )
    went_out = send_at + timedelta(seconds=5)
    ctx["clock"] = lambda: went_out
    await fanout_notice(ctx, notice.id)
    session.expire_all()
    stored = session.get(Notice, notice.id)
    assert stored is not None and stored.status == "sending"
    assert stored.published_at is not None and stored.published_at.replace(tzinfo=UTC) == went_out
    by_channel = {d.channel: d for d in deliveries(session, notice.id)}
    await send_deliveries(ctx, notice.id, "weibo", [by_channel["weibo"].id])
    await send_deliveries(ctx, notice.id, "sms", [by_channel["sms"].id])
    [post] = fake_providers["weibo"].sent
    assert post.text.startswith("市民您好") and "((" not in post.text + post.title
    [sms] = fake_providers["aliyun_sms"].sent
    assert sms.text.startswith("李四您好")  # people still get their own name
