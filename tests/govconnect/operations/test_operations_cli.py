"""`govconnect purge` and `govconnect backup`, run as an operator would (a subprocess, env configuration)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.govconnect.test_cli import cli_env, run  # noqa: F401


def test_purge_and_backup_commands(cli_env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    run(["agency", "create", "衢州市应急管理局", "--code", "qz-yjj"], cli_env)
    purged = json.loads(run(["purge", "--batch-size", "10"], cli_env).stdout)
    assert purged == {
        "deliveries": 0,
        "notices": 0,
        "audit": {"audit": 0},
        "callbacks": 0,
        "replies": 0,
        "calls": 0,
        "batches": 0,
    }

    target = tmp_path / "backups" / "b1"
    out = run(["backup", "create", str(target)], cli_env)
    assert "backup written" in out.stdout
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["alembic_revision"] and manifest["files"]
    again = run(["backup", "create", str(target)], cli_env, check=False)
    assert again.returncode == 1 and "not empty" in again.stderr and "Traceback" not in again.stderr
    # Restoring over a database that holds data is refused with a message, not a traceback.
    refused = run(["backup", "restore", str(target)], cli_env, check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "not empty" in refused.stderr or "already exists" in refused.stderr
    missing = run(["backup", "restore", str(tmp_path / "nowhere")], cli_env, check=False)
    assert missing.returncode == 1 and "manifest.json" in missing.stderr
