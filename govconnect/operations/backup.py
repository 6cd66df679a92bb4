"""Backup and restore (数据灾备): a consistent database copy plus the data dir, with a manifest and checksums.

SQLite is copied with its online backup API, PostgreSQL with `pg_dump -Fc` (both while the
gateway runs). Search indexes are left out: restore rebuilds them from the database.

Deliveries in flight when the backup was taken may have been sent by the old system after it:
restore "fences" them (see `fence_in_flight`) so the restored system never sends them again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess  # noqa: S404 - pg_dump / pg_restore with argument lists, never a shell
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, inspect, select, update
from sqlalchemy.engine import Engine, make_url

from contacts.directory import directory_index
from contacts.service import rebuild_index
from govconnect import __version__
from govconnect.clock import utcnow
from govconnect.db import current_revision, make_engine, session_scope, upgrade
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import Delivery, NoticeOutbox
from govconnect.settings import Settings

MANIFEST = "manifest.json"
FORMAT = 1
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
DATA_SUBDIR = "data"
# Rebuilt from the database on restore, and only consistent with the database it was built from.
SKIPPED_DATA = ("index",)
D = Delivery.__table__  # type: ignore[attr-defined]
N = Notice.__table__  # type: ignore[attr-defined]
O = NoticeOutbox.__table__  # type: ignore[attr-defined]  # noqa: E741
IN_FLIGHT_CODE = "restore_in_flight"


class BackupError(Exception):
    """A backup or restore cannot go on; the message says why (Chinese / English)."""


@dataclass(frozen=True)
class RestoreResult:
    """What a restore did."""

    notices: int
    fenced_deliveries: int
    stopped_fanouts: int
    contacts_indexed: int
    seconds: float


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sqlite_path(settings: Settings) -> Path:
    return Path(make_url(settings.effective_database_url).database or "").resolve()


def _pg_command(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise BackupError(
            f"找不到 {tool}，请安装 PostgreSQL 客户端 (Debian: apt-get install postgresql-client) / "
            f"{tool} was not found on PATH; install the PostgreSQL client tools"
        )
    return found


def _pg_conninfo(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password, and an environment carrying it (never on a command line)."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} 失败 / failed: {done.stderr.strip()[-500:]}")


def _empty_target(path: Path, what: str) -> None:
    if path.exists() and any(path.iterdir()):
        raise BackupError(f"{what} 不是空目录 / {what} is not empty: {path}")


def _copy_data_dir(data_dir: Path, target: Path, skip: set[Path]) -> None:
    backup_root = target.parent.resolve()
    for source in sorted(data_dir.rglob("*")):
        relative = source.relative_to(data_dir)
        if source.resolve() in skip or relative.parts[0] in SKIPPED_DATA or not source.is_file():
            continue
        if backup_root in source.resolve().parents:
            continue  # a backup written inside the data dir does not copy itself
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)


def create_backup(settings: Settings, directory: Path) -> dict[str, Any]:
    """Write a backup of the database and the data dir into an empty DIRECTORY; returns the manifest."""
    _empty_target(directory, "备份目录 / backup directory")
    if not settings.is_sqlite:
        _pg_command("pg_dump")  # before anything is written
    directory.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    engine = make_engine(settings.effective_database_url)
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    skip: set[Path] = set()
    if settings.is_sqlite:
        source_path = _sqlite_path(settings)
        if not source_path.exists():
            raise BackupError(f"数据库文件不存在 / database file not found: {source_path}")
        skip = {source_path, Path(f"{source_path}-wal"), Path(f"{source_path}-shm"), Path(f"{source_path}-journal")}
        source = sqlite3.connect(source_path)
        target = sqlite3.connect(directory / SQLITE_FILE)
        try:
            with target:
                source.backup(target)  # the online backup API: a consistent snapshot while writers go on
        finally:
            target.close()
            source.close()
        database = {"kind": "sqlite", "file": SQLITE_FILE}
    else:
        conninfo, env = _pg_conninfo(settings.effective_database_url)
        _run([_pg_command("pg_dump"), "-Fc", "--no-owner", "--no-acl", "-f", str(directory / PG_FILE), conninfo], env)
        database = {"kind": "postgresql", "file": PG_FILE}
    if settings.data_dir.exists():
        _copy_data_dir(settings.data_dir.resolve(), directory / DATA_SUBDIR, skip)
    files = [
        {"path": str(path.relative_to(directory)), "size": path.stat().st_size, "sha256": _sha256(path)}
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    ]
    manifest = {
        "format": FORMAT,
        "created_at": utcnow().isoformat(),
        "govconnect_version": __version__,
        "alembic_revision": revision,
        "database": database,
        "files": files,
        "seconds": round(time.monotonic() - started, 3),
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return manifest


def verify_backup(directory: Path) -> dict[str, Any]:
    """Read the manifest and check every file's size and checksum; raises BackupError on any mismatch."""
    try:
        manifest: dict[str, Any] = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"清单无法读取 / cannot read {MANIFEST}: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"不支持的备份格式 / unsupported backup format {manifest.get('format')!r}")
    for entry in manifest["files"]:
        path = (directory / entry["path"]).resolve()
        if directory.resolve() not in path.parents:
            raise BackupError(f"清单中的路径无效 / path outside the backup: {entry['path']}")
        if not path.is_file() or path.stat().st_size != entry["size"] or _sha256(path) != entry["sha256"]:
            raise BackupError(f"校验失败 / checksum mismatch: {entry['path']}")
    return manifest


def _database_is_empty(engine: Engine) -> bool:
    return not [t for t in inspect(engine).get_table_names() if t != "alembic_version"]


def fence_in_flight(engine: Engine) -> tuple[int, int]:
    """Never send twice what the old system may have sent after the backup.

    Deliveries still queued or sending in the backup become `unknown` (code `restore_in_flight`,
    uncertain) and unfinished fan-outs stop where the backup saw them. A provider report that
    still arrives for such a delivery moves it on as usual (a late receipt).
    """
    moment = utcnow()
    with engine.begin() as conn:
        fenced = conn.execute(
            update(D)
            .where(D.c.next_attempt_at.is_not(None), D.c.status.in_(("queued", "sending")))
            .values(
                status="unknown",
                uncertain=True,
                error_code=IN_FLIGHT_CODE,
                error_reason="in flight when the backup was taken",
                next_attempt_at=None,
                final_at=moment,
                updated_at=moment,
            )
        ).rowcount
        stopped = conn.execute(update(O).where(O.c.done_at.is_(None)).values(done_at=moment)).rowcount
    return int(fenced or 0), int(stopped or 0)


def restore_backup(settings: Settings, directory: Path, resend_in_flight: bool = False) -> RestoreResult:
    """Restore DIRECTORY into the configured, empty database and data dir, then rebuild the search index."""
    started = time.monotonic()
    manifest = verify_backup(directory)
    kind = manifest["database"]["kind"]
    if kind != ("sqlite" if settings.is_sqlite else "postgresql"):
        raise BackupError(f"备份是 {kind} 数据库，与当前配置不符 / the backup holds a {kind} database")
    data_dir = settings.data_dir.resolve()
    _empty_target(data_dir, "数据目录 / data dir")
    if settings.is_sqlite:
        target = _sqlite_path(settings)
        if target.exists() and target.stat().st_size > 0:
            raise BackupError(f"数据库文件已存在 / database file already exists: {target}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(directory / manifest["database"]["file"], target)
    else:
        engine = make_engine(settings.effective_database_url)
        try:
            if not _database_is_empty(engine):
                raise BackupError("目标数据库不是空的 / the target database is not empty")
        finally:
            engine.dispose()
        conninfo, env = _pg_conninfo(settings.effective_database_url)
        _run(
            [
                _pg_command("pg_restore"),
                "--no-owner",
                "--no-acl",
                "--exit-on-error",
                "-d",
                conninfo,
                str(directory / manifest["database"]["file"]),
            ],
            env,
        )
    data_source = directory / DATA_SUBDIR
    if data_source.exists():
        shutil.copytree(data_source, data_dir, dirs_exist_ok=True)
    upgrade(settings.effective_database_url)  # a backup from an older release is brought up to date
    engine = make_engine(settings.effective_database_url)
    try:
        fenced, stopped = (0, 0) if resend_in_flight else fence_in_flight(engine)
        indexed = _rebuild_indexes(engine, settings)
        with engine.connect() as conn:
            notices = int(conn.execute(select(func.count()).select_from(N)).scalar_one())
    finally:
        engine.dispose()
    return RestoreResult(notices, fenced, stopped, indexed, round(time.monotonic() - started, 3))


def _rebuild_indexes(engine: Engine, settings: Settings) -> int:
    """The directory index is rebuilt now; the notice search index catches up on its first search."""
    with session_scope(engine) as session:
        return rebuild_index(session, directory_index(settings.data_dir))
