"""回执 buttons: a meeting notice's DingTalk message links to each person's signed page (参加 / 不参加),
counted with SMS replies 1 / 2; a tap marks the notice read, so escalation stops there."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import httpx
from sqlmodel import Session

from contacts.models import Contact, Department
from govconnect.agencies.models import Agency
from tests.factories import make_key
from tests.govconnect.notices.test_end_to_end import Gateway
from tests.govconnect.notices.test_escalation import gateway as gateway  # the fixture
from tests.govconnect.notices.test_escalation import wait

PEOPLE = (("吴书记", "wusj", "13800000031"), ("郑站长", "zhengzz", "13800000032"), ("冯所长", "fengsz", "13800000033"))
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _link(client: httpx.Client, gw: Gateway, user: str) -> str:
    """The link in the person's DingTalk action card, as the sandbox received it."""
    sent = client.get(f"{gw.sandbox}/_sandbox/messages", params={"provider": "dingtalk", "recipient": user}).json()
    return urlsplit(str(sent["messages"][-1]["params"]["url"])).path  # the host is the configured public URL


def _tap(client: httpx.Client, link: str, answer: str) -> httpx.Response:
    page = client.get(link)
    assert page.status_code == 200 and "参加" in page.text
    token = CSRF.search(page.text)
    assert token is not None
    return client.post(link, data={"csrf": token.group(1), "answer": answer}, follow_redirects=False)


def test_buttons_and_sms_replies_are_tallied_together(gateway: Gateway, session: Session, agency: Agency) -> None:  # noqa: F811
    dept = Department(name="乡镇办", path="乡镇办")
    session.add(dept)
    session.flush()
    for name, userid, mobile in PEOPLE:
        session.add(Contact(name=name, department_id=dept.id or 0, mobile=mobile, dingtalk_userid=userid))
    session.commit()
    key = make_key(session, agency, ["notices:send", "notices:read"]).key
    auth = {"Authorization": f"Bearer {key}"}
    body = {
        "title": "乡镇工作例会",
        "body": "周五下午3点召开乡镇工作例会。",
        "category": "yjyj",
        "urgency": "urgent",
        "channels": ["dingtalk", "site"],
        "audience": {"staff": {"departments": [dept.id]}},
        "replies": "attendance",
        "escalation": {"after_minutes": 0.1},  # 6 s in this test
    }
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        r = client.post("/api/v1/notices", json=body, headers=auth)
        assert r.status_code == 202, r.text
        url = f"/api/v1/notices/{r.json()['id']}"
        wait(lambda: client.get(url, headers=auth).json()["progress"].get("dingtalk", {}).get("delivered") == 3)
        links = {user: _link(client, gateway, user) for _, user, _ in PEOPLE}
        assert len(set(links.values())) == 3 and all("/m/attend/" in link for link in links.values())
        wu = links["wusj"]
        # The site page opened with the person's token links to their 回执 page; without it, it says how to answer.
        site = f"/m/notices/{r.json()['id']}"
        assert f'href="{wu}"' in client.get(site, params={"r": wu.rsplit("/", 1)[1]}).text
        plain = client.get(site, params={"r": "forged.AAAAAAAAAAAAAAAA"}).text
        assert "/m/attend/" not in plain and "回复通知短信 1" in plain
        # 吴书记 taps 参加 at once: counted, and the tap is his reading (he gets no SMS).
        rejected = client.post(wu, data={"answer": "attend"}, follow_redirects=False)
        assert rejected.status_code == 400  # no CSRF token
        assert _tap(client, wu, "maybe").status_code == 400
        done = _tap(client, wu, "attend")
        assert done.status_code == 303
        assert "已提交：参加" in client.get(done.headers["location"]).text
        # The organiser sees who has not answered among the DingTalk recipients, before any SMS.
        early = client.get(f"{url}/replies", headers=auth).json()["attendance"]
        assert (early["attend"], early["unanswered"], len(early["not_answered"])) == (1, 2, 2)
        forged = wu[:-4] + ("AAAA" if not wu.endswith("AAAA") else "BBBB")
        assert client.get(forged).status_code == 404 and _tap_status(client, forged) == 404
        # The other two read nothing: SMS after the wait; 郑站长 answers 2 by SMS, 冯所长 taps 不参加 then 参加.
        wait(lambda: client.get(url, headers=auth).json()["escalation"]["sms"] == 2)
        sms = client.get(f"{url}/deliveries", params={"channel": "sms"}, headers=auth).json()["items"]
        assert sorted(d["recipient"] for d in sms) == ["138****0032", "138****0033"]
        client.post(
            f"{gateway.sandbox}/_sandbox/sms/reply", json={"phone": "13800000032", "content": "2", "wait": True}
        )
        feng = links["fengsz"]
        assert _tap(client, feng, "decline").status_code == 303
        assert _tap(client, feng, "attend").status_code == 303
        assert "您已回执：参加" in client.get(feng).text
        replies = client.get(f"{url}/replies", headers=auth).json()
        tally = replies["attendance"]
        assert (tally["attend"], tally["decline"], tally["unanswered"]) == (2, 1, 0)
        assert {item["provider"] for item in replies["items"]} >= {"link"}
        escalation = client.get(url, headers=auth).json()["escalation"]
        assert escalation["read"] == 2 and escalation["sms"] == 2  # 吴 and 冯 tapped their links
        time.sleep(0.5)
        assert client.get(url, headers=auth).json()["escalation"]["sms"] == 2


def _tap_status(client: httpx.Client, link: str) -> int:
    """A POST to a forged link, with a valid CSRF token from another page, is refused."""
    page = client.get("/m/unsubscribe")
    token = CSRF.search(page.text)
    assert token is not None
    return client.post(link, data={"csrf": token.group(1), "answer": "attend"}).status_code
