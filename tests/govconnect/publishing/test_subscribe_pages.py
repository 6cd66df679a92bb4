from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from govconnect.citizens.models import Subscriber
from govconnect.citizens.subscriptions import manage_url, preferences_of, subscriber_token, unsubscribe_url
from tests.govconnect.publishing.conftest import SandboxHandle
from tests.govconnect.publishing.helpers import csrf_from


def test_subscribe_change_and_leave_on_the_site(client: TestClient, session: Session, sandbox: SandboxHandle) -> None:
    box = sandbox
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
            "category": ["yjyj"],
            "channel": ["sms"],
        },
    )
    assert wrong.status_code == 400 and "还可尝试 4 次" in wrong.text
    done = client.post(
        "/m/subscribe/confirm",
        data={
            "code": box.last_code("13800001111"),
            "csrf": form,
            "category": ["yjyj", "jtcx"],
            "region": ["江山市"],
            "channel": ["sms", "voice"],
        },
    )
    assert done.status_code == 200 and "订阅成功" in done.text
    subscriber = session.exec(select(Subscriber).where(Subscriber.phone == "13800001111")).one()
    assert subscriber.status == "active" and sorted(subscriber.channels) == ["sms", "voice"]
    assert preferences_of(session, subscriber).regions == ["江山市"]
    changed = client.post(
        "/m/subscription", data={"csrf": csrf_from(done.text), "category": ["jy"], "channel": ["sms"]}
    )
    assert "已保存" in changed.text
    session.expire_all()
    assert preferences_of(session, subscriber).categories == ["jy"]
    left = client.post("/m/subscription/leave", data={"csrf": csrf_from(changed.text)})
    assert "已退订" in left.text
    session.expire_all()
    assert session.get(Subscriber, subscriber.id).status == "unsubscribed"  # type: ignore[union-attr]


def test_code_requests_are_rate_limited_on_the_site(client: TestClient, sandbox: SandboxHandle) -> None:
    token = csrf_from(client.get("/m/subscribe").text)
    client.post("/m/subscribe/code", data={"phone": "13800001111", "csrf": token})
    again = client.post("/m/subscribe/code", data={"phone": "13800001111", "csrf": token})
    assert again.status_code == 400 and "频繁" in again.text  # one code a minute per number
    # Citizens behind one carrier NAT share an address: each of them still gets a code.
    neighbours = [f"1380000{n:04d}" for n in range(2000, 2019)]
    for number in neighbours:
        sent = client.post("/m/subscribe/code", data={"phone": number, "csrf": token}, follow_redirects=False)
        assert sent.status_code == 303, sent.text
    # ... up to the address's budget (20 codes in 10 minutes).
    over = client.post("/m/subscribe/code", data={"phone": "13800003000", "csrf": token})
    assert over.status_code == 400 and "网络" in over.text
    assert len(sandbox.sms_texts("13800001111")) == 1 and sandbox.sms_texts("13800003000") == []
    assert all(len(sandbox.sms_texts(number)) == 1 for number in neighbours)
    assert client.post("/m/subscribe/code", data={"phone": "13800001111", "csrf": "bad"}).status_code == 400
    bad = client.post("/m/subscribe/restart", data={"csrf": token}, follow_redirects=False)
    assert bad.status_code == 303
    invalid = client.post("/m/subscribe/code", data={"phone": "12345", "csrf": token})
    assert invalid.status_code == 400 and "11 位手机号码" in invalid.text


def test_code_sms_goes_out_without_opt_out_hint(client: TestClient, sandbox: SandboxHandle) -> None:
    token = csrf_from(client.get("/m/subscribe").text)
    client.post("/m/subscribe/code", data={"phone": "13800001111", "csrf": token})
    [text] = sandbox.sms_texts("13800001111")
    assert "订阅验证码" in text and "回T退订" not in text


def test_provider_refusal_is_a_message_not_a_500(client: TestClient, sandbox: SandboxHandle) -> None:
    sandbox.fault("aliyun_sms", "error", code="isv.BUSINESS_LIMIT_CONTROL", count=1)
    token = csrf_from(client.get("/m/subscribe").text)
    refused = client.post("/m/subscribe/code", data={"phone": "13800001111", "csrf": token})
    assert refused.status_code == 400 and "发送失败" in refused.text
    assert sandbox.sms_texts("13800001111") == []


def test_unsubscribe_link_and_code(client: TestClient, session: Session, settings: Any, sandbox: SandboxHandle) -> None:
    box = sandbox
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
    [text] = sandbox.sms_texts("13800002222")
    assert "退订验证码" in text and "订阅验证码" not in text  # the SMS says what the code is for
    client.post("/m/unsubscribe/confirm", data={"code": box.last_code("13800002222"), "csrf": csrf_from(step.text)})
    session.expire_all()
    assert session.get(Subscriber, second.id).status == "unsubscribed"  # type: ignore[union-attr]


def test_personal_links_open_preferences_and_unsubscribe(client: TestClient, session: Session, settings: Any) -> None:
    follower = Subscriber(wechat_openid="oFollower01", channels=["wechat"], source="wechat")
    session.add(follower)
    session.commit()
    secret = settings.secret_key.get_secret_value()
    manage = manage_url("http://testserver", secret, follower.id)  # type: ignore[arg-type]
    page = client.get(manage.removeprefix("http://testserver"))
    assert page.status_code == 200 and "微信用户" in page.text and 'value="wechat"' in page.text
    assert 'value="sms"' not in page.text  # no number, so no SMS channel to choose
    link = unsubscribe_url("http://testserver", secret, follower.id)  # type: ignore[arg-type]
    assert link.startswith("http://testserver/m/u/")
