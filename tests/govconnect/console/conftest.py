"""Console tests run the whole app (embedded worker, provider sandbox) through TestClient, signed in as staff."""

from __future__ import annotations

from functools import cache

from fastapi.testclient import TestClient
from sqlmodel import Session

from govconnect.agencies.models import Agency, StaffUser
from govconnect.agencies.service import create_agency
from govconnect.audit.record import Actor
from govconnect.governance.policy import set_policy
from govconnect.security import hash_password
from tests.govconnect.publishing.conftest import app, client, sandbox  # noqa: F401 - fixtures
from tests.govconnect.publishing.helpers import csrf_from

PASSWORD = "correct-horse-1"  # noqa: S105 - test accounts


def console_sign_in(http: TestClient, username: str) -> None:
    """Sign in through /m/login with next=/console/ (the console has no sign-in of its own)."""
    token = csrf_from(http.get("/m/login", params={"next": "/console/"}).text)
    response = http.post(
        "/m/login",
        data={"username": username, "password": PASSWORD, "csrf": token, "next": "/console/"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/console/", response.text


def console_csrf(http: TestClient, path: str = "/console/") -> str:
    """The CSRF token a console page carries."""
    return csrf_from(http.get(path).text)


@cache
def team_password_hash() -> str:
    return hash_password(PASSWORD)  # argon2 is slow on purpose: hash the test password once


def make_team(session: Session, code: str = "qz-yjj", name: str = "衢州市应急管理局") -> Agency:
    """An agency with an operator (wangli-…), an approver (zhaomin-…) and a plain staff member (liuyang-…)."""
    agency = create_agency(session, name, code, "衢州市")
    for username, role, display in (
        ("wangli", "operator", "王丽"),
        ("zhaomin", "approver", "赵敏"),
        ("liuyang", "staff", "刘洋"),
    ):
        session.add(
            StaffUser(
                username=f"{username}-{code}",
                agency_id=agency.id or 0,
                role=role,
                password_hash=team_password_hash(),
                display_name=display,
            )
        )
    session.commit()
    return agency


def require_sign_off(session: Session, agency: Agency) -> None:
    """Every notice of the agency needs one approver."""
    set_policy(session, agency.id or 0, Actor.cli(agency.id), require_approval="all")
    session.commit()
