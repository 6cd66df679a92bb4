"""Every page of the app, found from app.routes, fed hostile values in every query and string path parameter.

Each answer must be a non-5xx; each HTML answer must carry a CSP with a nonce, give every `<script>` that
nonce or a same-origin src, and never echo a hostile value unescaped. A new page is covered without
editing this file; a new path parameter name needs a sample value in `sample_path_values`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from contacts.models import Department
from govconnect.agencies.models import Agency, StaffUser
from govconnect.agencies.service import create_api_key, create_staff
from govconnect.audiences.models import AudienceList
from govconnect.calls.models import DialCall
from govconnect.citizens.subscriptions import Preferences, subscribe_phone, subscriber_token
from govconnect.message_templates.schemas import TemplateCreate
from govconnect.message_templates.service import create_template
from govconnect.notices.pipeline_models import Delivery
from govconnect.notices.replies import attendance_token
from govconnect.settings import Settings
from tests.govconnect.publishing.helpers import make_notice
from tests.govconnect.publishing.test_staff_directory import seed_directory, sign_in
from tests.routes import api_routes

HOSTILE = (
    "</script><script>alert(1)</script>",
    "\"'><img src=x onerror=alert(1)>",
    "\u2028",
    "1" * 30,
    "\x00",
)
# What must never come back as markup (autoescaped, they read &lt;script&gt; or &#34;&#39;&gt;&lt;img ...).
UNESCAPED = ("<script>alert(1)", "<img src=x onerror", "\"'><")
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
NONCE = re.compile(r"script-src[^;]*'nonce-([A-Za-z0-9_\-+/=]+)'")


def page_routes(app: Any) -> list[tuple[str, APIRoute]]:
    """Every GET route outside the JSON API (pages, fragments, feeds, docs), with its full path."""
    return [(p, r) for p, r in api_routes(app) if "GET" in r.methods and not p.startswith(("/api/", "/openapi"))]


def declared_params(route: APIRoute) -> tuple[list[str], dict[str, type]]:
    """The route's query parameter names and its path parameters with their types (sub-dependencies included)."""
    query: list[str] = []
    path: dict[str, type] = {}

    def walk(dependant: Dependant) -> None:
        query.extend(p.alias for p in dependant.query_params if p.alias not in query)
        path.update({p.alias: p.field_info.annotation for p in dependant.path_params})
        for sub in dependant.dependencies:
            walk(sub)

    walk(route.dependant)
    return query, path


def check_page(response: Any, where: str) -> None:
    """No 5xx; an HTML answer has a nonce CSP, only nonced or same-origin scripts and no unescaped hostile value."""
    assert response.status_code < 500, f"{where}: {response.status_code}"
    assert response.headers.get("x-content-type-options") == "nosniff", where
    if not response.headers.get("content-type", "").startswith("text/html"):
        return
    policy = response.headers.get("content-security-policy", "")
    match = NONCE.search(policy)
    assert match, f"{where}: no nonce in CSP {policy!r}"
    for needed in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'"):
        assert needed in policy, f"{where}: CSP lacks {needed}"
    body = response.text
    for attrs, content in SCRIPT_TAG.findall(body):
        src = re.search(r'\bsrc="([^"]*)"', attrs)
        nonced = f'nonce="{match.group(1)}"' in attrs
        same_origin = src is not None and src.group(1).startswith("/") and not src.group(1).startswith("//")
        assert nonced or same_origin, f"{where}: script without nonce: <script{attrs}>"
        assert "\u2028" not in content and "\u2029" not in content, f"{where}: raw U+2028/9 inside a script"
    for marker in UNESCAPED:
        assert marker not in body, f"{where}: {marker!r} came back unescaped"
    assert "\x00" not in body, f"{where}: NUL in the page"


@pytest.fixture
def signed_in_everywhere(
    client: TestClient, session: Session, settings: Settings, agency: Agency, operator: str
) -> dict[str, str]:
    """An admin's session (every staff page, the console's admin rooms too), a subscriber's session, and one
    real object for each path parameter."""
    contact_ids = seed_directory(session, settings)
    create_staff(session, "sweep-admin", agency, "admin", "correct-horse-1", "管理员")
    key = create_api_key(session, agency, ["notices:read"], "sweep")
    template, _version = create_template(
        session,
        agency.id or 0,
        TemplateCreate.model_validate({"name": "模板", "title": "标题", "variants": {"site": {"text": "正文"}}}),
    )
    notice = make_notice(session, agency, title="暴雨橙色预警", urgency="urgent", channels=["site", "tv", "sms"])
    subscriber = subscribe_phone(session, "13800138000", Preferences([], [], ["sms"]))
    staff = session.exec(select(StaffUser).where(StaffUser.username == "sweep-admin")).one()  # the call's owner
    call = DialCall(
        agency_id=agency.id or 0,
        actor=f"staff:{staff.id}",
        staff_user_id=staff.id,
        target_type="contact",
        target_id=str(contact_ids["张伟"]),
    )
    session.add(call)
    meeting = make_notice(session, agency, title="防汛会商", channels=["site", "sms"])
    meeting.replies = "attendance"  # a meeting notice: its delivery's 回执 page
    invited = Delivery(notice_id=meeting.id, channel="sms", recipient="13800138001", status="sent")
    saved_list = AudienceList(agency_id=agency.id or 0, name="名单", status="ready")
    session.add_all([meeting, invited, saved_list])
    session.commit()
    secret = settings.secret_key.get_secret_value()
    token = subscriber_token(secret, int(subscriber.id or 0))
    department = session.exec(select(Department).order_by(col(Department.id))).first()
    assert department is not None
    sign_in(client, "sweep-admin")
    assert client.get(f"/m/s/{token}", follow_redirects=False).status_code == 303  # the subscriber's session
    return {
        "notice_id": notice.id,
        "contact_id": str(contact_ids["张伟"]),
        "department_id": str(department.id),
        "token": token,
        "key_id": str(key.record.id),
        "template_id": str(template.id),
        "call_id": call.id,
        "invite": attendance_token(secret, invited.id),
        "fmt": "csv",
        "list_id": str(saved_list.id),
    }


def sample_path_values(route: APIRoute, samples: dict[str, str]) -> dict[str, str]:
    """A real value for each path parameter; a new parameter name must be added to the fixture above."""
    _, path_params = declared_params(route)
    missing = set(path_params) - set(samples)
    assert not missing, f"{route.path}: give the sweep a sample value for {sorted(missing)}"
    return {name: samples[name] for name in path_params}


def test_every_page_renders_safely_with_hostile_parameters(
    app: Any, client: TestClient, signed_in_everywhere: dict[str, str]
) -> None:
    routes = page_routes(app)
    html_paths = {p for p, r in routes if r.response_class is HTMLResponse}
    assert {"/m/", "/tv/", "/m/staff/", "/m/staff/compose", "/m/subscribe", "/m/subscription", "/docs"} <= html_paths
    for template, route in routes:
        path = template.format(**sample_path_values(route, signed_in_everywhere))
        plain = client.get(path, follow_redirects=False)
        check_page(plain, path)
        if route.response_class is HTMLResponse:
            # Signed in as admin and subscriber, every page renders for real (no redirect to a sign-in page).
            assert plain.status_code == 200 and plain.headers["content-type"].startswith("text/html"), path
        query_params, path_params = declared_params(route)
        for value in HOSTILE:
            for name in query_params:
                check_page(client.get(path, params={name: value}, follow_redirects=False), f"{path}?{name}={value!r}")
            for name, kind in path_params.items():
                if kind is str:
                    hostile_path = template.format(
                        **{**sample_path_values(route, signed_in_everywhere), name: quote(value, safe="")}
                    )
                    check_page(client.get(hostile_path, follow_redirects=False), f"{hostile_path!r}")


def test_the_tv_page_no_longer_reflects_its_region_into_a_script(client: TestClient) -> None:
    attack = "</script><script>alert(1)</script>"
    page = client.get("/tv/", params={"region": attack})
    assert page.status_code == 200
    assert attack not in page.text and "<script>alert(1)" not in page.text
    # The region still reaches the page's script, as data it can read.
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in page.text
