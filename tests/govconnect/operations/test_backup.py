"""The restore drill on both databases: seed, send, back up, keep sending, restore into a fresh place.

The restored system serves the same notices, contacts and subscribers, its directory search
works from the rebuilt index, and deliveries in flight at backup time are never sent again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from contacts import crud
from contacts.directory import directory_index, search_directory
from contacts.models import Contact
from govconnect.agencies.models import Agency
from govconnect.citizens.models import Subscriber
from govconnect.db import make_engine
from govconnect.notices.fanout import fanout_notice
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import Delivery
from govconnect.notices.sweeper import sweep
from govconnect.operations.backup import (
    IN_FLIGHT_CODE,
    MANIFEST,
    BackupError,
    create_backup,
    restore_backup,
    verify_backup,
)
from govconnect.settings import Settings
from govconnect.worker import InProcessQueue
from tests.conftest import _pg_admin_conninfo
from tests.factories import make_subscriber
from tests.govconnect.notices.conftest import drain
from tests.govconnect.notices.fakes import ScriptedChannel, provider_set
from tests.govconnect.reports.test_rollups import send_notice


@pytest.fixture
def fresh_db_url(db_backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same kind, for the restore."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored' / 'govconnect.db'}"
        return
    name = f"gc_restore_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(_pg_admin_conninfo(), autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    base = _pg_admin_conninfo().rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def counts(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {
            "notices": sorted(r[0] for r in conn.execute(select(Notice.id))),  # type: ignore[call-overload]
            "contacts": conn.execute(select(func.count()).select_from(Contact)).scalar_one(),
            "subscribers": sorted(r[0] for r in conn.execute(select(Subscriber.phone))),  # type: ignore[call-overload]
        }


async def test_restore_drill(
    ctx: dict[str, Any],
    session: Session,
    agency: Agency,
    settings: Settings,
    fresh_db_url: str,
    tmp_path: Path,
) -> None:
    data_dir = Path(ctx["settings"].data_dir)
    ix = directory_index(data_dir)
    crud.create_contact(session, ix, {"name": "钱多多", "department": "衢州市财政局/国库科", "position": "科长"})
    session.commit()
    for i in range(4):
        make_subscriber(session, f"1340000000{i}", None, channels=["sms"])
    sent = send_notice(session, agency, ctx["settings"], ["sms"])
    await fanout_notice(ctx, sent)
    await drain(ctx)
    await ctx["queue"].stop()
    in_flight = send_notice(session, agency, ctx["settings"], ["sms"])
    await fanout_notice(ctx, in_flight)  # written and queued, not yet sent when the backup is taken
    before = counts(ctx["engine"])

    backup_dir = tmp_path / "backup"
    manifest = create_backup(ctx["settings"], backup_dir)
    kind = "sqlite" if settings.is_sqlite else "postgresql"
    assert json.loads((backup_dir / MANIFEST).read_text())["database"]["kind"] == kind
    assert not any(f["path"].startswith("data/index") for f in manifest["files"])  # rebuilt on restore

    # The old system keeps sending after the backup: the in-flight deliveries go out there.
    ctx["queue"].start()
    await drain(ctx)
    after_backup = send_notice(session, agency, ctx["settings"], ["sms"])
    assert after_backup not in before["notices"]

    restored_dir = tmp_path / "restored"
    restored = settings.model_copy(update={"database_url": fresh_db_url, "data_dir": restored_dir})
    result = restore_backup(restored, backup_dir)
    assert result.fenced_deliveries == 4 and result.contacts_indexed == 1
    engine = make_engine(fresh_db_url)
    try:
        assert counts(engine) == before
        with Session(engine) as s:
            fenced = s.exec(select(Delivery).where(Delivery.notice_id == in_flight)).scalars().all()  # type: ignore[call-overload]
            assert {(d.status, d.error_code) for d in fenced} == {("unknown", IN_FLIGHT_CODE)}
        assert search_directory(restored_dir, "qdd", privileged=False).items[0]["name"] == "钱多多"
        # The restored system runs its sweeper and workers: nothing in flight at backup time is sent again.
        provider = ScriptedChannel("aliyun_sms")
        restored_ctx: dict[str, Any] = {"settings": restored, "engine": engine}
        queue = InProcessQueue(restored_ctx)
        restored_ctx["providers"] = provider_set(aliyun_sms=provider, cmpp=ScriptedChannel("cmpp"))
        await sweep(restored_ctx)
        await drain(restored_ctx)
        await queue.stop()
        assert provider.sent == []
    finally:
        engine.dispose()
    # Restoring again over the now-used place is refused.
    with pytest.raises(BackupError):
        restore_backup(restored, backup_dir)


def test_backup_checksums_and_refusals(settings: Settings, tmp_path: Path, engine: Engine) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "demo-secret.txt").write_text("x")
    backup_dir = tmp_path / "b"
    create_backup(settings, backup_dir)
    assert verify_backup(backup_dir)["files"]
    with pytest.raises(BackupError, match="not empty"):
        create_backup(settings, backup_dir)
    (backup_dir / "data" / "demo-secret.txt").write_text("tampered")
    with pytest.raises(BackupError, match="checksum"):
        verify_backup(backup_dir)


def test_missing_pg_dump_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    settings = Settings(database_url="postgresql://127.0.0.1:5432/none", data_dir=tmp_path / "data")
    with pytest.raises(BackupError, match="pg_dump was not found on PATH"):
        create_backup(settings, tmp_path / "b")
    assert not (tmp_path / "b").exists()
