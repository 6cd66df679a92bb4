"""Restore drill timings: seed a database, back it up, restore it into a fresh place, and time each step.

    .venv/bin/python bench/restore_drill.py [--backend sqlite|postgresql] [--subscribers 100000]
        [--deliveries 300000] [--contacts 20000]

PostgreSQL uses a private database on GOVCONNECT_TEST_PG_ADMIN (default 127.0.0.1:5432/test),
created and dropped here. Prints a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contacts.demo_data import load_demo  # noqa: E402
from govconnect.agencies.models import Agency  # noqa: E402
from govconnect.citizens.models import Subscriber  # noqa: E402
from govconnect.db import make_engine, session_scope, upgrade  # noqa: E402
from govconnect.notices.models import Notice  # noqa: E402
from govconnect.notices.pipeline_models import Delivery  # noqa: E402
from govconnect.operations.backup import create_backup, restore_backup  # noqa: E402
from govconnect.settings import Settings  # noqa: E402

PG_ADMIN = os.environ.get("GOVCONNECT_TEST_PG_ADMIN", "postgresql://127.0.0.1:5432/test")
SECRET = "bench-restore-drill-secret-0123456789"  # noqa: S105 - a throwaway key for the drill


@contextmanager
def database(backend: str, root: Path, name: str) -> Iterator[str]:
    """A fresh database URL (a file under `root`, or a private PostgreSQL database)."""
    if backend == "sqlite":
        yield f"sqlite:///{root / name / 'govconnect.db'}"
        return
    db = f"gc_bench_{name}_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(PG_ADMIN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{db}"')
    try:
        yield f"{PG_ADMIN.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+psycopg://')}/{db}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()


def seed(url: str, subscribers: int, deliveries: int, contacts: int) -> None:
    """Subscribers, contacts, one notice per 10,000 deliveries, deliveries half of them in flight."""
    engine = make_engine(url)
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        load_demo(session, contacts)
    with engine.begin() as conn:
        agency_id = conn.execute(insert(Agency).values(code="bench", name="基准测试局")).inserted_primary_key[0]
        for start in range(0, subscribers, 10_000):
            conn.execute(
                insert(Subscriber),
                [
                    {
                        "phone": f"13{i:09d}",
                        "channels": ["sms"],
                        "status": "active",
                        "created_at": now,
                        "updated_at": now,
                        "name": "",
                        "source": "import",
                    }
                    for i in range(start, min(subscribers, start + 10_000))
                ],
            )
        for n in range(0, deliveries, 10_000):
            notice_id = uuid.uuid4().hex
            conn.execute(
                insert(Notice).values(
                    id=notice_id,
                    agency_id=agency_id,
                    title="基准",
                    body="正文",
                    channels=["sms"],
                    audience={},
                    regions=[],
                    status="sending",
                    created_at=now,
                )
            )
            conn.execute(
                insert(Delivery),
                [
                    {
                        "id": uuid.uuid4().hex,
                        "notice_id": notice_id,
                        "channel": "sms",
                        "recipient": f"13{i:09d}",
                        "params": {},
                        "status": "queued" if i % 2 else "sent",
                        "next_attempt_at": now if i % 2 else None,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(n, min(deliveries, n + 10_000))
                ],
            )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--deliveries", type=int, default=300_000)
    parser.add_argument("--contacts", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with database(args.backend, root, "source") as source_url, database(args.backend, root, "restored") as target:
            upgrade(source_url)
            started = time.monotonic()
            seed(source_url, args.subscribers, args.deliveries, args.contacts)
            seeded = time.monotonic() - started
            source = Settings(database_url=source_url, data_dir=root / "source", secret_key=SECRET)
            started = time.monotonic()
            manifest = create_backup(source, root / "backup")
            backup_seconds = time.monotonic() - started
            restored = Settings(database_url=target, data_dir=root / "restored", secret_key=SECRET)
            result = restore_backup(restored, root / "backup")
            size = sum(entry["size"] for entry in manifest["files"])
    print(
        json.dumps(
            {
                "backend": args.backend,
                "subscribers": args.subscribers,
                "deliveries": args.deliveries,
                "contacts": args.contacts,
                "seed_seconds": round(seeded, 1),
                "backup_seconds": round(backup_seconds, 2),
                "backup_bytes": size,
                "restore_seconds": result.seconds,
                "fenced_in_flight": result.fenced_deliveries,
                "contacts_indexed": result.contacts_indexed,
                "load_average": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    main()
