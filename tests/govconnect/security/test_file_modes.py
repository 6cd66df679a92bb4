"""Data dir 0700; SQLite database, WAL and SHM, search index files and the demo secret 0600 (issue 11, low)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from govconnect.db import make_engine
from govconnect.demo import seed as demo
from govconnect.settings import Settings
from tests.govconnect.test_cli import run


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The common default umask (022), under which files would be world-readable."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_files_are_private_from_creation(tmp_path: Path, loose_umask: None) -> None:
    db = tmp_path / "data" / "govconnect.db"
    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x TEXT)"))
            conn.execute(text("INSERT INTO t VALUES ('13800138000')"))
        with engine.connect() as conn:
            conn.execute(text("SELECT * FROM t")).all()
            files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
            assert all(f.exists() for f in files)
            assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        engine.dispose()
    assert mode(db.parent) == 0o700


def test_demo_secret_is_created_private(tmp_path: Path, loose_umask: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # No later chmod may be needed to make it private: refuse any.
    monkeypatch.setattr(Path, "chmod", lambda *_a, **_k: pytest.fail("chmod after creation"))
    settings = demo.prepare_demo(Settings(data_dir=tmp_path / "var", secret_key="", demo=True))
    secret = tmp_path / "var" / "demo-secret-key"
    assert mode(secret) == 0o600 and mode(secret.parent) == 0o700
    assert settings.secret_key.get_secret_value() == secret.read_text()


def test_cli_creates_data_dir_database_and_index_privately(tmp_path: Path) -> None:
    data = tmp_path / "fresh-data"
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text("name,department,office_phone\n测试,衢州市财政局,0570-3051234\n", encoding="utf-8")
    env = {"GOVCONNECT_DATA_DIR": str(data), "GOVCONNECT_SECRET_KEY": "cli-test-secret", "GOVCONNECT_DATABASE_URL": ""}
    run(["contacts", "import", str(csv_file)], env)
    assert mode(data) == 0o700
    created = [p for p in data.rglob("*")]
    assert any(p.name == "govconnect.db" for p in created) and any(p.is_dir() for p in created)
    for path in created:
        assert mode(path) & 0o077 == 0, (path, oct(mode(path)))
