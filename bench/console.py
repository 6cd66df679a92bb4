"""Console figures: latency of every console page with 100,000 deliveries in the database (target < 300 ms).

Run: .venv/bin/python bench/console.py [--deliveries 100000] [--requests 20] [--database-url postgresql://…]
(default: a fresh SQLite file). Prints a final JSON line; `slowest_p95_ms` is the figure to hold under 300.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

# Run as a script, bench/ comes first on the path and its channels.py would hide the package.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlmodel import Session  # noqa: E402

from govconnect.agencies.service import create_agency, create_staff  # noqa: E402
from govconnect.app import create_app  # noqa: E402
from govconnect.clock import utcnow  # noqa: E402
from govconnect.db import make_engine, upgrade  # noqa: E402
from govconnect.notices.models import Notice, new_id  # noqa: E402
from govconnect.notices.pipeline_models import Delivery  # noqa: E402
from govconnect.settings import Settings  # noqa: E402

STATUSES = ("delivered", "delivered", "delivered", "sent", "failed", "cancelled")
PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway account


def seed(engine: object, deliveries: int, notices: int) -> str:
    """An agency with `notices` notices (the first holds half the deliveries); the big notice's id."""
    D = Delivery.__table__  # type: ignore[attr-defined]
    with Session(engine) as session:  # type: ignore[call-overload]
        agency = create_agency(session, "衢州市应急管理局", "bench", "衢州市")
        create_staff(session, "bench-operator", agency, "admin", PASSWORD, "王丽")
        now = utcnow()
        ids = []
        for i in range(notices):
            notice = Notice(
                agency_id=agency.id or 0,
                title=f"关于做好第{i}期防汛工作的通知",
                body="各乡镇（街道）：根据气象部门预报，今夜有暴雨。",
                channels=["sms", "site"],
                public=True,
                status="sending" if i == 0 else "completed",
                recipient_count=0,
                created_at=now - timedelta(minutes=i),
                created_by="staff:1",
            )
            session.add(notice)
            ids.append(notice.id)
        session.commit()
    big = ids[0]
    rows = []
    for n in range(deliveries):
        notice_id = big if n < deliveries // 2 else ids[1 + n % (notices - 1)]
        status = STATUSES[n % len(STATUSES)]
        rows.append(
            {
                "id": new_id(),
                "notice_id": notice_id,
                "channel": "sms",
                "provider": "aliyun_sms",
                "recipient": f"138{n:08d}",
                "params": {},
                "status": status,
                "next_attempt_at": None,
                "created_at": now,
                "updated_at": now,
            }
        )
        if len(rows) == 5000:
            with engine.begin() as conn:  # type: ignore[attr-defined]
                conn.execute(insert(D), rows)
            rows = []
    if rows:
        with engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(insert(D), rows)
    return big


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--notices", type=int, default=500)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        started = time.perf_counter()
        big = seed(engine, args.deliveries, args.notices)
        out: dict[str, object] = {"deliveries": args.deliveries, "notices": args.notices, "backend": url.split(":")[0]}
        out["seed_seconds"] = round(time.perf_counter() - started, 1)
        settings = Settings(database_url=url, data_dir=Path(tmp), secret_key="bench-secret-key-0123456789")  # noqa: S106
        app = create_app(settings, engine=engine)
        with TestClient(app) as client:
            token = re.search(r'name="csrf" value="([^"]+)"', client.get("/m/login").text)
            assert token
            form = {"username": "bench-operator", "password": PASSWORD, "csrf": token.group(1), "next": "/console/"}
            assert client.post("/m/login", data=form).status_code == 200
            pages = {
                "dashboard": "/console/",
                "notices": "/console/notices",
                "notices_search": "/console/notices?q=防汛&status=completed&channel=sms",
                "notices_page_20": "/console/notices?page=20",
                "notice_big": f"/console/notices/{big}",
                "notice_big_failed": f"/console/notices/{big}?status=failed&page=50",
                "progress_json": f"/console/notices/{big}/progress.json",
                "approvals": "/console/approvals",
                "compose": "/console/compose",
                "templates": "/console/templates",
                "keys": "/console/keys",
                "team": "/console/team",
                "audiences": "/console/audiences",
                "directory": "/console/directory",
                "reports": "/console/reports",
                "subscribers": "/console/subscribers",
                "suppressions": "/console/suppressions",
                "settings": "/console/settings",
                "audit": "/console/audit",
            }
            slowest = 0.0
            for name, path in pages.items():
                assert client.get(path).status_code == 200, path
                times = []
                for _ in range(args.requests):
                    start = time.perf_counter()
                    client.get(path)
                    times.append((time.perf_counter() - start) * 1000)
                p95 = sorted(times)[max(0, int(len(times) * 0.95) - 1)]
                out[f"{name}_p50_ms"] = round(statistics.median(times), 1)
                out[f"{name}_p95_ms"] = round(p95, 1)
                slowest = max(slowest, p95)
            out["slowest_p95_ms"] = round(slowest, 1)
        engine.dispose()
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
