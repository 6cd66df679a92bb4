"""The command line, run as a user would: a real subprocess with environment configuration."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def run(args: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "govconnect", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, engine) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "GOVCONNECT_DATABASE_URL": db_url,
        "GOVCONNECT_DATA_DIR": str(tmp_path),
        "GOVCONNECT_SECRET_KEY": "cli-test-secret",
        "GOVCONNECT_REDIS_URL": "",
    }


def test_agency_key_staff_lifecycle(cli_env: dict[str, str]) -> None:
    out = run(["agency", "create", "衢州市应急管理局", "--code", "qz-yjj", "--region", "衢州市"], cli_env)
    assert "qz-yjj" in out.stdout
    dup = run(["agency", "create", "again", "--code", "qz-yjj"], cli_env, check=False)
    assert dup.returncode != 0 and "already exists" in dup.stderr and "Traceback" not in dup.stderr
    key = run(["key", "create", "qz-yjj", "--scopes", "notices:send,notices:read"], cli_env).stdout.strip()
    assert key.startswith("gck_")
    listed = run(["key", "list", "qz-yjj"], cli_env).stdout
    prefix = "_".join(key.split("_")[:2])
    assert prefix in listed and key not in listed and "active" in listed
    bad_scope = run(["key", "create", "qz-yjj", "--scopes", "everything"], cli_env, check=False)
    assert bad_scope.returncode != 0 and "unknown scope" in bad_scope.stderr
    run(["key", "revoke", prefix], cli_env)
    assert "revoked" in run(["key", "list", "qz-yjj"], cli_env).stdout
    staff = run(
        ["staff", "create", "zhangwei", "--agency", "qz-yjj", "--role", "operator", "--password", "s3cret-pass"],
        cli_env,
    )
    assert "operator zhangwei" in staff.stdout
    weak = run(["staff", "create", "lisi", "--agency", "qz-yjj", "--password", "123"], cli_env, check=False)
    assert weak.returncode != 0 and "8" in weak.stderr
    nokey = run(["key", "create", "nope", "--scopes", "admin"], cli_env, check=False)
    assert nokey.returncode != 0 and "no agency" in nokey.stderr


def test_config_masks_secrets(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "GOVCONNECT_ALIYUN_SMS__ACCESS_KEY_SECRET": "very-secret-value"}
    out = run(["config"], env).stdout
    assert "very-secret-value" not in out and "cli-test-secret" not in out
    assert "ALIYUN_SMS__ACCESS_KEY_SECRET" in out and "********" in out


def test_worker_refuses_without_redis(cli_env: dict[str, str]) -> None:
    proc = run(["worker"], cli_env, check=False)
    assert proc.returncode != 0
    assert "GOVCONNECT_REDIS_URL" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("secret", ["", "change-me"])
@pytest.mark.parametrize("args", [["serve", "--port", "1"], ["worker"], ["agency", "list"], ["purge"]])
def test_every_command_refuses_the_default_secret(cli_env: dict[str, str], args: list[str], secret: str) -> None:
    env = {**cli_env, "GOVCONNECT_SECRET_KEY": secret, "GOVCONNECT_REDIS_URL": "redis://127.0.0.1:6379/0"}
    proc = run(args, env, check=False)
    assert proc.returncode == 1, proc.stdout
    assert "GOVCONNECT_SECRET_KEY is not set" in proc.stderr and "Traceback" not in proc.stderr


def test_read_only_commands_never_migrate(tmp_path: Path) -> None:
    """`agency list` on a database without the schema says so and leaves it untouched; `db upgrade` fixes it."""
    env = {
        "GOVCONNECT_DATA_DIR": str(tmp_path),
        "GOVCONNECT_SECRET_KEY": "cli-test-secret",
        "GOVCONNECT_DATABASE_URL": "",
    }
    listed = run(["agency", "list"], env, check=False)
    assert listed.returncode == 1 and "govconnect db upgrade" in listed.stderr and "Traceback" not in listed.stderr
    database = tmp_path / "govconnect.db"
    assert not database.exists() or sqlite3.connect(database).execute("select name from sqlite_master").fetchall() == []
    run(["db", "upgrade"], env)
    run(["agency", "create", "衢州市大数据局", "--code", "qz-dsj"], env)
    assert "qz-dsj" in run(["agency", "list"], env).stdout


@pytest.mark.parametrize("args", [[], ["serve"], ["worker"], ["db"], ["agency"], ["key"], ["staff"], ["config"]])
def test_help_explains_itself(args: list[str]) -> None:
    proc = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "govconnect", *args, "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert "Usage" in proc.stdout and len(proc.stdout.splitlines()) > 5
