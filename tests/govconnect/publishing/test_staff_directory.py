from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from contacts.crud import create_contact
from contacts.directory import directory_index
from govconnect.settings import Settings
from tests.govconnect.publishing.helpers import csrf_from


def seed_directory(session: Session, settings: Settings) -> dict[str, int]:
    """A few contacts, indexed; returns their ids by name."""
    ix = directory_index(settings.data_dir)
    people = [
        {
            "name": "张伟",
            "department": "衢州市人民政府办公室/秘书一处",
            "position": "处长",
            "office_phone": "0570-3012345",
            "mobile": "13905701234",
            "short_number": "661234",
        },
        {
            "name": "李娜",
            "department": "衢州市人民政府办公室/秘书二处",
            "position": "科员",
            "office_phone": "0570-3012346",
        },
        {
            "name": "王强",
            "department": "衢州市应急管理局/值班室",
            "position": "值班员",
            "office_phone": "0570-3099999",
            "mobile": "13905709999",
            "visibility": "staff",
        },
    ]
    return {p["name"]: int(create_contact(session, ix, p).id or 0) for p in people}


def sign_in(client: TestClient, username: str, password: str = "correct-horse-1") -> None:
    token = csrf_from(client.get("/m/login").text)
    response = client.post("/m/login", data={"username": username, "password": password, "csrf": token})
    assert response.status_code == 200, response.text


def test_directory_pages_need_a_signed_in_staff_member(client: TestClient) -> None:
    for path in ("/m/staff/", "/m/staff/search.frag?q=zw", "/m/staff/contacts/1", "/m/staff/departments"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/m/login?next="), path


def test_search_card_and_tree(client: TestClient, session: Session, settings: Settings, operator: str) -> None:
    ids = seed_directory(session, settings)
    sign_in(client, operator)
    page = client.get("/m/staff/", params={"q": "zhangwei"})
    assert page.status_code == 200 and "张伟" in page.text and "李娜" not in page.text
    assert 'src="/static/instant.js"' in page.text
    fragment = client.get("/m/staff/search.frag", params={"q": "值班"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "王强" in fragment.text  # a staff-only contact: staff see it
    assert "13905709999" in fragment.text  # and its mobile number
    card = client.get(f"/m/staff/contacts/{ids['张伟']}").text
    for link in ('href="tel:0570-3012345"', 'href="tel:13905701234"', 'href="sms:13905701234"', 'href="tel:661234"'):
        assert link.replace("0570-", "0570") in card, link
    tree = client.get("/m/staff/departments").text
    assert "衢州市人民政府办公室" in tree and "秘书一处" in tree and "值班室" in tree
    assert client.get("/m/staff/contacts/999999").status_code == 404


def test_instant_script_is_small_and_pages_light(
    client: TestClient, session: Session, settings: Settings, operator: str
) -> None:
    seed_directory(session, settings)
    sign_in(client, operator)
    assert len(client.get("/static/instant.js").content) < 2048
    assert len(client.get("/m/staff/?q=z").content) < 100 * 1024


def test_public_cannot_see_private_numbers_through_the_api(
    client: TestClient, session: Session, settings: Settings, app: Any, operator: str
) -> None:
    seed_directory(session, settings)
    anonymous = client.get("/api/v1/contacts/search", params={"q": "张伟"}).json()
    assert "mobile" not in anonymous["items"][0]
    sign_in(client, operator)
    staff_view = client.get("/api/v1/contacts/search", params={"q": "张伟"}).json()
    assert staff_view["items"][0]["mobile"] == "13905701234"  # the session cookie makes the API privileged
