from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.clock import utcnow
from tests.govconnect.publishing.helpers import csrf_from, make_notice

PAGE_LIMIT = 100 * 1024


def notice_list(html: str) -> str:
    return html.split('<ul class="list">', 1)[1].split("</ul>", 1)[0]


def test_home_lists_public_notices_by_category_and_region(client: TestClient, session: Session, agency: Agency) -> None:
    storm = make_notice(session, agency, title="暴雨橙色预警", regions=["柯城区"], urgency="urgent")
    road = make_notice(session, agency, title="江山市部分道路施工", category="jtcx", regions=["江山市"])
    make_notice(session, agency, title="内部工作通知", public=False, channels=["sms"])
    make_notice(session, agency, title="已撤回的通知", status="cancelled", cancelled_at=utcnow())
    make_notice(session, agency, title="明天才发的通知", status="scheduled", send_at=utcnow() + timedelta(days=1))
    page = client.get("/m/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert storm.title in page.text and road.title in page.text
    assert "内部工作通知" not in page.text and "已撤回" not in page.text and "明天才发" not in page.text
    assert len(page.content) < PAGE_LIMIT
    assert 'class="urgent"' in page.text  # the urgent banner
    assert 'href="/feeds/tv.xml"' in page.text
    traffic = notice_list(client.get("/m/", params={"category": "jtcx"}).text)
    assert road.title in traffic and storm.title not in traffic
    kecheng = notice_list(client.get("/m/", params={"region": "柯城区"}).text)
    assert storm.title in kecheng and road.title not in kecheng


def test_notice_detail_and_withdrawn_notice(client: TestClient, session: Session, agency: Agency) -> None:
    notice = make_notice(session, agency)
    private = make_notice(session, agency, public=False)
    page = client.get(f"/m/notices/{notice.id}")
    assert page.status_code == 200 and notice.body in page.text and agency.name in page.text
    assert "/m/unsubscribe" in page.text
    assert client.get(f"/m/notices/{private.id}").status_code == 404
    assert client.get("/m/notices/" + "x" * 300).status_code == 404


def test_search_finds_chinese_words(client: TestClient, session: Session, agency: Agency) -> None:
    storm = make_notice(session, agency, title="暴雨橙色预警", body="请市民注意防范山洪地质灾害")
    school = make_notice(session, agency, title="秋季学期开学安排", body="中小学将于九月一日开学", category="jy")
    found = client.get("/m/search", params={"q": "山洪"}).text
    assert storm.title in found and school.title not in found
    assert school.title in client.get("/m/search", params={"q": "开学"}).text
    # A notice created after the first search is picked up by the next one.
    later = make_notice(session, agency, title="交通管制通知", body="衢江大桥夜间封闭施工", category="jtcx")
    assert later.title in client.get("/m/search", params={"q": "大桥"}).text
    # One stamped before the last indexed notice but committed after it is found too.
    late = make_notice(
        session, agency, title="迟到的通知", body="龙游石窟景区临时闭园", created_at=utcnow() - timedelta(minutes=3)
    )
    assert late.title in client.get("/m/search", params={"q": "石窟"}).text
    assert client.get("/m/search", params={"q": "x" * 101}).status_code == 422


def test_staff_login_requires_csrf_and_sets_session(client: TestClient, operator: str) -> None:
    assert client.get("/m/staff/", follow_redirects=False).headers["location"].startswith("/m/login")
    page = client.get("/m/login")
    token = csrf_from(page.text)
    bad = client.post("/m/login", data={"username": operator, "password": "correct-horse-1", "csrf": "nope"})
    assert bad.status_code == 400
    wrong = client.post("/m/login", data={"username": operator, "password": "wrong-password", "csrf": token})
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
    ok = client.post(
        "/m/login",
        data={"username": operator, "password": "correct-horse-1", "csrf": token, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/m/staff/"
    cookie = ok.headers["set-cookie"]
    assert "gc_session=" in cookie and "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    home = client.get("/m/")
    assert "退出" in home.text
    client.post("/m/logout", data={"csrf": csrf_from(home.text)})
    assert "退出" not in client.get("/m/").text


def test_login_rate_limit(client: TestClient, operator: str) -> None:
    token = csrf_from(client.get("/m/login").text)
    statuses = [
        client.post("/m/login", data={"username": operator, "password": f"guess-{i}", "csrf": token}).status_code
        for i in range(6)
    ]
    # Five free failures, then this address waits before its next try on the account.
    assert statuses[:5] == [401] * 5 and statuses[5] == 429
    slowed = client.post("/m/login", data={"username": operator, "password": "correct-horse-1", "csrf": token})
    assert slowed.status_code == 429 and 0 < int(slowed.headers["retry-after"]) <= 60


def test_pages_fit_a_phone(client: TestClient, session: Session, agency: Agency) -> None:
    for i in range(30):
        make_notice(session, agency, title=f"通知标题第{i}号关于做好近期防汛防台工作的通知", body="正文" * 200)
    for path in ("/m/", "/m/subscribe", "/m/unsubscribe", "/m/login", "/m/weibo", "/tv/", "/m/search?q=防汛"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert len(response.content) < PAGE_LIMIT, (path, len(response.content))
        assert 'name="viewport"' in response.text


def test_signed_in_staff_is_the_viewer(app: Any, client: TestClient, session: Session, operator: str) -> None:
    from govconnect.api.deps import ViewerDep

    @app.get("/test-viewer")
    def viewer(viewer: ViewerDep) -> dict[str, Any]:
        return {"privileged": viewer.privileged, "staff": viewer.staff.username if viewer.staff else None}

    assert client.get("/test-viewer").json() == {"privileged": False, "staff": None}
    token = csrf_from(client.get("/m/login").text)
    client.post("/m/login", data={"username": operator, "password": "correct-horse-1", "csrf": token})
    assert client.get("/test-viewer").json() == {"privileged": True, "staff": operator}
    # Disabling the account ends the session at once.
    from sqlmodel import select

    from govconnect.agencies.models import StaffUser

    user = session.exec(select(StaffUser).where(StaffUser.username == operator)).one()
    user.active = False
    session.add(user)
    session.commit()
    assert client.get("/test-viewer").json() == {"privileged": False, "staff": None}
