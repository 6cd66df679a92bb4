import time
from datetime import timedelta

import httpx
from fastapi.testclient import TestClient
from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.clock import utcnow
from govconnect.notices.pipeline_models import Delivery
from tests.govconnect.publishing.conftest import SandboxHandle
from tests.govconnect.publishing.helpers import csrf_from, make_notice
from tests.govconnect.publishing.test_staff_directory import sign_in


def _posts(session: Session, agency: Agency) -> dict[str, Delivery]:
    now = utcnow()
    rows = {}
    for title, status, error in (
        ("已发布的微博", "sent", None),
        ("失败的微博", "failed", "21332"),
        ("重试中的微博", "queued", "http_503"),
    ):
        notice = make_notice(session, agency, title=title, channels=["weibo"])
        delivery = Delivery(
            notice_id=notice.id,
            channel="weibo",
            provider="weibo",
            recipient="public",
            status=status,
            attempts=2 if error else 1,
            error_code=error,
            sent_at=now if status == "sent" else None,
            final_at=now - timedelta(minutes=1) if status == "failed" else None,
            deadline_at=now - timedelta(minutes=1),
        )
        session.add(delivery)
        rows[title] = delivery
    session.commit()
    return rows


def test_site_shows_what_was_posted_with_links_back(client: TestClient, session: Session, agency: Agency) -> None:
    rows = _posts(session, agency)
    page = client.get("/m/weibo").text
    assert "已发布的微博" in page and "失败的微博" not in page and "重试中的微博" not in page
    assert f"/m/notices/{rows['已发布的微博'].notice_id}" in page


def test_operators_see_failures_and_retry_them(
    client: TestClient, session: Session, agency: Agency, operator: str, sandbox: SandboxHandle
) -> None:
    rows = _posts(session, agency)
    assert client.get("/m/staff/weibo", follow_redirects=False).status_code == 303
    sign_in(client, operator)
    page = client.get("/m/staff/weibo").text
    assert "发布失败" in page and "21332" in page and "重试中" in page and "http_503" in page
    failed = rows["失败的微博"]
    bad = client.post(f"/m/staff/weibo/{rows['已发布的微博'].id}/retry", data={"csrf": csrf_from(page)})
    assert bad.status_code == 404  # only failed posts can be sent again
    client.post(f"/m/staff/weibo/{failed.id}/retry", data={"csrf": csrf_from(page)})
    deadline = time.monotonic() + 10
    while True:  # the in-process worker posts it through the Weibo channel to the sandbox
        statuses = httpx.get(f"{sandbox.url}/_sandbox/weibo/timeline").json()["statuses"]
        if statuses or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(statuses) == 1 and "失败的微博" in statuses[0]["text"]
    session.expire_all()
    assert session.get(Delivery, failed.id).status in ("sent", "delivered")  # type: ignore[union-attr]
