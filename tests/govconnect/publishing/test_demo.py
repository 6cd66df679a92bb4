from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from govconnect.demo.seed import seed_demo
from govconnect.notices.models import Category, Notice
from govconnect.settings import Settings


def test_demo_seeds_categories_and_public_notices_once(engine: Engine, settings: Settings, session: Session) -> None:
    info = seed_demo(engine, settings)
    seed_demo(engine, settings)
    assert len(session.exec(select(Category)).all()) == 6
    notices = session.exec(select(Notice)).all()
    assert len(notices) == 3 and all(n.public for n in notices)
    assert any("/tv/" in note for note in info.notes)


def test_app_start_seeds_defaults_outside_test_mode(engine: Engine, settings: Settings, session: Session) -> None:
    from fastapi.testclient import TestClient

    from govconnect.app import create_app
    from govconnect.citizens.publishing_models import PublicRegion

    with TestClient(create_app(settings.model_copy(update={"test_mode": False}), engine=engine)):
        pass
    assert len(session.exec(select(Category)).all()) == 6
    assert [r.name for r in session.exec(select(PublicRegion).order_by(PublicRegion.sort_order)).all()][:2] == [
        "柯城区",
        "衢江区",
    ]
