from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from govconnect.agencies import create_agency, create_staff
from govconnect.app import create_app
from govconnect.models import Agency
from govconnect.settings import Settings


@pytest.fixture
def app(settings: Settings, engine: Engine) -> Any:
    return create_app(settings, engine=engine)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def agency(session: Session) -> Agency:
    agency = create_agency(session, "衢州市应急管理局", "qz-yjj", "衢州市")
    session.commit()
    return agency


@pytest.fixture
def operator(session: Session, agency: Agency) -> str:
    create_staff(session, "wangli", agency, "operator", "correct-horse-1", "王丽")
    session.commit()
    return "wangli"
