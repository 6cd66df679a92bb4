"""Publishing figures: page sizes and latency of /m/, /tv/ and the TV feeds (full and 304) on SQLite.

Run: .venv/bin/python bench/publishing.py [--notices 2000] [--requests 200]
Prints a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

from govconnect.agencies.service import create_agency
from govconnect.app import create_app
from govconnect.clock import utcnow
from govconnect.db import make_engine, upgrade
from govconnect.notices.models import Notice
from govconnect.settings import Settings

CATEGORIES = ("zwgk", "yjyj", "jtcx", "sbyl", "jy", "zcjd")
REGIONS = ("柯城区", "衢江区", "龙游县", "江山市", "常山县", "开化县")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--notices", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        with Session(engine) as session:
            agency = create_agency(session, "衢州市人民政府办公室", "bench", "衢州市")
            now = utcnow()
            for i in range(args.notices):
                session.add(
                    Notice(
                        agency_id=agency.id or 0,
                        title=f"关于做好第{i}期防汛防台工作的通知",
                        body="各乡镇（街道）、市直有关单位：根据气象部门预报，" * 6,
                        category=CATEGORIES[i % 6],
                        regions=[REGIONS[i % 6]] if i % 3 else [],
                        urgency="urgent" if i % 97 == 0 else "normal",
                        channels=["site", "tv", "sms"],
                        public=True,
                        status="completed",
                        created_at=now - timedelta(minutes=i),
                    )
                )
            session.commit()
        settings = Settings(database_url=url, data_dir=Path(tmp), secret_key="bench-secret-key-0123456789")  # noqa: S106
        app = create_app(settings, engine=engine)
        out: dict[str, object] = {"notices": args.notices, "requests": args.requests}
        with TestClient(app) as client:
            for name, path in (
                ("m_home", "/m/"),
                ("m_region", "/m/?region=江山市"),
                ("tv_page", "/tv/"),
                ("feed_rss", "/feeds/tv.xml"),
                ("feed_json", "/feeds/tv.json?category=jtcx"),
            ):
                first = client.get(path)
                times = []
                for _ in range(args.requests):
                    start = time.perf_counter()
                    client.get(path)
                    times.append((time.perf_counter() - start) * 1000)
                out[f"{name}_bytes"] = len(first.content)
                out[f"{name}_p50_ms"] = round(statistics.median(times), 2)
                out[f"{name}_p95_ms"] = round(sorted(times)[int(len(times) * 0.95) - 1], 2)
            etag = client.get("/feeds/tv.json").headers["etag"]
            times = []
            for _ in range(args.requests):
                start = time.perf_counter()
                status = client.get("/feeds/tv.json", headers={"If-None-Match": etag}).status_code
                times.append((time.perf_counter() - start) * 1000)
                assert status == 304
            out["feed_304_p50_ms"] = round(statistics.median(times), 2)
            client.get("/m/search?q=防汛")  # builds the index
            times = []
            for _ in range(args.requests):
                start = time.perf_counter()
                client.get("/m/search?q=防汛防台")
                times.append((time.perf_counter() - start) * 1000)
            out["search_p50_ms"] = round(statistics.median(times), 2)
        engine.dispose()
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
