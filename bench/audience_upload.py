"""Audience upload figures: a large CSV streamed into a saved list, time and memory of the server process.

Run: .venv/bin/python bench/audience_upload.py [--rows 1000000] [--database-url postgresql+psycopg://…]
(default: a SQLite file in a temporary directory). The server runs in this process (uvicorn in a
thread), so the RSS figures include it. Prints a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

# Run as a script, bench/ comes first on the path and its channels.py would hide the package.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import httpx  # noqa: E402
import psutil  # noqa: E402
from sqlmodel import Session  # noqa: E402

from channels.sandbox.runner import run_in_thread  # noqa: E402
from govconnect.app import create_app  # noqa: E402
from govconnect.db import make_engine, upgrade  # noqa: E402
from govconnect.settings import Settings  # noqa: E402
from tests.factories import make_agency, make_key  # noqa: E402


def write_csv(path: Path, rows: int) -> int:
    """A CSV of `rows` people (1% bad numbers, 1% repeats); its size in bytes."""
    with path.open("w", encoding="utf-8") as out:
        out.write("手机号,姓名,地址\n")
        for i in range(rows):
            phone = "12345" if i % 100 == 7 else f"139{(i - 1 if i % 100 == 9 else i):08d}"
            out.write(f"{phone},居民{i},衢州市柯城区某某街道{i % 500}号\n")
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    process = psutil.Process()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        with Session(engine, expire_on_commit=False) as session:
            agency = make_agency(session, code=f"bench-{int(time.time())}")
            key = make_key(session, agency, ["notices:send", "notices:read"]).key
        settings = Settings(database_url=url, data_dir=Path(tmp), secret_key="bench-secret-key-0123456789")  # noqa: S106
        csv_path = Path(tmp) / "audience.csv"
        size = write_csv(csv_path, args.rows)
        server = run_in_thread(create_app(settings, engine=engine))
        rss_before = process.memory_info().rss
        peak = [rss_before]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.2):
                peak[0] = max(peak[0], process.memory_info().rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        try:
            with httpx.Client(base_url=server.url, timeout=3600) as client, csv_path.open("rb") as handle:
                answer = client.post(
                    "/api/v1/audiences",
                    headers={"Authorization": f"Bearer {key}"},
                    files={"file": ("audience.csv", handle, "text/csv")},
                ).json()
        finally:
            seconds = time.monotonic() - started
            done.set()
            sampler.join()
            server.stop()
            engine.dispose()
    print(
        json.dumps(
            {
                "rows": args.rows,
                "file_mb": round(size / 1e6, 1),
                "backend": url.split(":", 1)[0],
                "seconds": round(seconds, 1),
                "rows_per_second": round(args.rows / seconds),
                "accepted": answer.get("accepted"),
                "refused": answer.get("refused"),
                "duplicates": answer.get("duplicates"),
                "rss_before_mb": round(rss_before / 1e6),
                "rss_peak_mb": round(peak[0] / 1e6),
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
