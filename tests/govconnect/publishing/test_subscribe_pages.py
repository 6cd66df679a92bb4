import re
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from govconnect.citizens.models import Subscriber
from govconnect.citizens.subscriptions import preferences_of, subscriber_token
from tests.govconnect.publishing.helpers import csrf_from


class Outbox:
    """Stands in for the SMS provider at the boundary: keeps what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def __call__(self, _app: Any, phone: str, text: str) -> None:
        self.sent.append((phone, text))

    def last_code(self, phone: str) -> str:
        texts = [t for p, t in self.sent if p == phone]
        match = re.search(r"\d{6}", texts[-1])
        assert match
        return match.group(0)


def _outbox(app: Any) -> Outbox:
    box = Outbox()
    app.state.code_sender = box
    return box


def test_subscribe_change_and_leave_on_the_site(app: Any, client: TestClient, session: Session) -> None:
    box = _outbox(app)
    page = client.get("/m/subscribe")
    assert "获取验证码" in page.text
    sent = client.post("/m/subscribe/code", data={"phone": "13800001111", "csrf": csrf_from(page.text)})
    assert sent.status_code == 200 and "138****1111" in sent.text and "13800001111" not in sent.text
    form = csrf_from(sent.text)
    wrong = client.post(
        "/m/subscribe/confirm",
        data={
            "code": "000000" if box.last_code("13800001111") != "000000" else "111111",
            "csrf": form,
            "category": ["emergency"],
            "channel": ["sms"],
        },
    )
    assert wrong.status_code == 400 and "还可尝试 4 次" in wrong.text
    done = client.post(
        "/m/subscribe/confirm",
        data={
            "code": box.last_code("13800001111"),
            "csrf": form,
            "category": ["emergency", "traffic"],
            "region": ["江山市"],
            "channel": ["sms", "voice"],
        },
    )
    assert done.status_code == 200 and "订阅成功" in done.text
    subscriber = session.exec(select(Subscriber).where(Subscriber.phone == "13800001111")).one()
    assert subscriber.status == "active" and sorted(subscriber.channels) == ["sms", "voice"]
    assert preferences_of(session, subscriber).regions == ["江山市"]
    changed = client.post(
        "/m/subscription", data={"csrf": csrf_from(done.text), "category": ["education"], "channel": ["sms"]}
    )
    assert "已保存" in changed.text
    session.expire_all()
    assert preferences_of(session, subscriber).categories == ["education"]
    left = client.post("/m/subscription/leave", data={"csrf": csrf_from(changed.text)})
    assert "已退订" in left.text
    session.expire_all()
    assert session.get(Subscriber, subscriber.id).status == "unsubscribed"  # type: ignore[union-attr]


def test_code_requests_are_rate_limited_on_the_site(app: Any, client: TestClient) -> None:
    box = _outbox(app)
    token = csrf_from(client.get("/m/subscribe").text)
    client.post("/m/subscribe/code", data={"phone": "13800001111", "csrf": token})
    again = client.post("/m/subscribe/code", data={"phone": "13800002222", "csrf": token})
    assert again.status_code == 400 and "频繁" in again.text
    assert len(box.sent) == 1
    assert client.post("/m/subscribe/code", data={"phone": "13800001111", "csrf": "bad"}).status_code == 400
    bad = client.post("/m/subscribe/restart", data={"csrf": token}, follow_redirects=False)
    assert bad.status_code == 303
    invalid = client.post("/m/subscribe/code", data={"phone": "12345", "csrf": token})
    assert invalid.status_code == 400 and "11 位手机号码" in invalid.text


def test_without_an_sms_sender_the_page_says_so(app: Any, client: TestClient) -> None:
    app.state.code_sender = None
    token = csrf_from(client.get("/m/subscribe").text)
    response = client.post("/m/subscribe/code", data={"phone": "13800001111", "csrf": token})
    assert response.status_code == 400 and "暂不可用" in response.text


def test_unsubscribe_link_and_code(app: Any, client: TestClient, session: Session, settings: Any) -> None:
    box = _outbox(app)
    first = Subscriber(phone="13800001111", channels=["sms"])
    second = Subscriber(phone="13800002222", channels=["sms"])
    session.add(first)
    session.add(second)
    session.commit()
    token = subscriber_token(settings.secret_key.get_secret_value(), first.id)  # type: ignore[arg-type]
    confirm = client.get(f"/m/u/{token}")
    assert confirm.status_code == 200 and "138****1111" in confirm.text
    session.expire_all()
    assert session.get(Subscriber, first.id).status == "active"  # type: ignore[union-attr] - GET changes nothing
    client.post(f"/m/u/{token}", data={"csrf": csrf_from(confirm.text)})
    session.expire_all()
    assert session.get(Subscriber, first.id).status == "unsubscribed"  # type: ignore[union-attr]
    assert client.get(f"/m/u/{token}x").status_code == 404
    page = client.get("/m/unsubscribe")
    assert "TD" in page.text
    step = client.post("/m/unsubscribe/code", data={"phone": "13800002222", "csrf": csrf_from(page.text)})
    client.post("/m/unsubscribe/confirm", data={"code": box.last_code("13800002222"), "csrf": csrf_from(step.text)})
    session.expire_all()
    assert session.get(Subscriber, second.id).status == "unsubscribed"  # type: ignore[union-attr]
