import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from govconnect.agencies.models import StaffUser
from govconnect.agencies.service import authenticate_staff, lookup_api_key, revoke_api_key
from govconnect.demo.info import DemoInfo, print_demo_banner
from govconnect.demo.seed import seed_demo
from govconnect.notices.models import Category, Notice
from govconnect.security import hash_password
from govconnect.settings import Settings


def test_demo_seeds_categories_and_public_notices_once(engine: Engine, settings: Settings, session: Session) -> None:
    info = seed_demo(engine, settings)
    seed_demo(engine, settings)
    assert len(session.exec(select(Category)).all()) == 6
    notices = session.exec(select(Notice)).all()
    assert len(notices) == 3 and all(n.public for n in notices)
    assert any("/tv/" in note for note in info.notes)
    assert any(note.startswith("console 控制台: /console/") for note in info.notes)


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


def _banner(info: DemoInfo) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_demo_banner(info, "127.0.0.1", 8000)
    return out.getvalue()


def _keys_work(session: Session, keys: list[str]) -> bool:
    session.expire_all()
    records = [lookup_api_key(session, key) for key in keys]
    return all(r is not None and r.revoked_at is None for r in records)


def _notice_keys(info: DemoInfo) -> list[str]:
    assert info.credentials is not None
    return [info.credentials.keys[code] for code in ("qz-yjj", "qz-rsj")]


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_restarting_the_demo_keeps_its_credentials(engine: Engine, settings: Settings, session: Session) -> None:
    first = seed_demo(engine, settings)
    assert "CHANGED" not in _banner(first) and "same credentials" not in _banner(first)
    second = seed_demo(engine, settings)
    assert (second.api_key, second.operator_password) == (first.api_key, first.operator_password)
    assert _notice_keys(second) == _notice_keys(first)
    for key in _notice_keys(first):
        assert key in "\n".join(second.notes)  # the printed commands use the keys that still work
    assert _keys_work(session, [first.api_key, *_notice_keys(first)])
    assert authenticate_staff(session, "demo", first.operator_password) is not None
    banner = _banner(second)
    assert "CHANGED" not in banner and "same credentials" in banner
    assert (settings.data_dir / "demo-credentials.json").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_the_demo_says_loudly_when_a_credential_changed(engine: Engine, settings: Settings, session: Session) -> None:
    first = seed_demo(engine, settings)
    prefix = first.api_key.split("_")[1]
    revoke_api_key(session, f"gck_{prefix}")
    user = session.exec(select(StaffUser).where(StaffUser.username == "demo")).one()
    user.password_hash = hash_password("changed-by-the-operator")
    session.add(user)
    session.commit()

    second = seed_demo(engine, settings)
    assert second.api_key != first.api_key and second.operator_password != first.operator_password
    assert _keys_work(session, [second.api_key])
    banner = _banner(second)
    assert "CHANGED" in banner and "the key of qz-demo" in banner and "the password of demo" in banner
    assert authenticate_staff(session, "demo", second.operator_password) is not None

    (settings.data_dir / "demo-credentials.json").unlink()  # a lost file: every key is new, and the old ones stop
    third = seed_demo(engine, settings)
    assert not _keys_work(session, [second.api_key]) and _keys_work(session, [third.api_key])
    assert "CHANGED" in _banner(third)


def test_the_printed_broadcast_commands_send_every_time(engine: Engine, settings: Settings) -> None:
    info = seed_demo(engine, settings)
    commands = [note for note in info.notes if note.startswith(("flood:", "policy:"))]
    assert len(commands) == 2
    for command in commands:
        # A fixed Idempotency-Key made the second run return the first notice and send nothing.
        assert "Idempotency-Key" not in command and "/api/v1/notices" in command
