"""Directory search benchmark: GovConnect vs SQLite FTS5 (trigram, bm25) vs a plain LIKE scan.

    .venv/bin/python bench/search.py [--count 100000] [--rounds 3]

Generates a fictional directory, loads it into a temporary SQLite database, builds the index
(timed), runs a mixed query set through the Python search function, through HTTP, and through
the two baselines on the same data, and prints a final JSON line keyed by system.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like our `search` package: take bench/ off the path so imports find the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import sqlite3  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import opencc  # noqa: E402
import psutil  # noqa: E402
import uvicorn  # noqa: E402
from pypinyin import Style, lazy_pinyin, pinyin  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlmodel import Session  # noqa: E402

from contacts.demo_data import department_plan, generate  # noqa: E402
from contacts.directory import directory_index, search_directory  # noqa: E402
from contacts.models import Contact  # noqa: E402
from contacts.service import ensure_department, get_or_create_region, rebuild_index  # noqa: E402
from govconnect.app import create_app  # noqa: E402
from govconnect.db import make_engine, upgrade  # noqa: E402
from govconnect.settings import Settings  # noqa: E402

BROAD = [
    "科长",
    "办公室",
    "科员",
    "主任",
    "副局长",
    "局长",
    "办公室主任",
    "应急局",
    "市府办",
    "江山 应急 局长",
    "柯城 教育 科长",
]


def load(db_url: str, count: int) -> list[dict[str, str]]:
    """Fill the database with `count` generated contacts; returns the rows."""
    rows = list(generate(count))
    engine = make_engine(db_url)
    with Session(engine) as session:
        depts = {}
        for path, region, aliases in department_plan():
            dept = ensure_department(session, path, get_or_create_region(session, region))
            dept.aliases = aliases
            depts[path] = dept
        regions = {r["region"]: get_or_create_region(session, r["region"]) for r in rows[:2000]}
        session.commit()
        values = [
            {
                "name": r["name"],
                "department_id": depts[r["department"]].id,
                "position": r["position"],
                "office_phone": r["office_phone"],
                "mobile": r["mobile"],
                "short_number": r["short_number"],
                "email": r["email"],
                "region_id": regions[r["region"]].id,  # type: ignore[union-attr]
                "visibility": r["visibility"],
                "sort_order": 0,
                "external_id": r["external_id"],
            }
            for r in rows
        ]
        for start in range(0, len(values), 5000):
            session.execute(insert(Contact), values[start : start + 5000])
        session.commit()
    engine.dispose()
    return rows


# Issue 15's kinds: derived short names, glued department + position, fallbacks, polyphonic given
# names, namesakes with region / position words.
SHORT_NAMES = (
    "人社局",
    "住建局",
    "卫健委",
    "文广旅局",
    "市场监管局",
    "大数据局",
    "应急局",
    "自规局",
    "环保局",
    "交运局",
)
GLUED = ("人事科科长", "预算科副科长", "应急局局长", "办公室主任", "规划科科长", "国库科科长", "医政医管科副科长")
SOUND_ALIKE = ("规化科", "人世科", "应机局", "国库课", "预算课科长", "交通运书局")
REGION_HEADS = ("江山", "柯城", "衢江", "龙游", "常山", "开化", "市")
NEW_KINDS = ["short_name", "glued", "fewer_terms", "sound_alike", "polyphonic", "namesake"]
KINDS = ["name", "part", "trad", "pinyin", "pinyin_space", "initials", "mixed", "phone", "short", "broad", "dept"]
KINDS += NEW_KINDS


def _second_reading(name: str) -> str:
    """The name's pinyin with another reading of a polyphonic given-name character where there is one."""
    readings = [r for r in pinyin(name, style=Style.NORMAL, heteronym=True)]
    out = [r[0] for r in readings]
    for i in range(1, len(readings)):
        if len(readings[i]) > 1:
            out[i] = readings[i][1]
            break
    return "".join(out)


def query_set(rows: list[dict[str, str]], size: int, seed: int = 7) -> list[str]:
    """A mixed set: names, parts, traditional, pinyin, initials, mixed, departments, positions, phones, broad,
    and the kinds of issue 15 (short names, glued words, fallbacks, polyphonic readings, namesakes)."""
    rng = random.Random(seed)
    t2s = opencc.OpenCC("s2t")
    queries: list[str] = []
    kinds = KINDS
    while len(queries) < size:
        kind = kinds[len(queries) % len(kinds)]
        row = rng.choice(rows)
        name = row["name"]
        py = lazy_pinyin(name)
        if kind == "short_name":
            queries.append(rng.choice(("", *REGION_HEADS)) + rng.choice(SHORT_NAMES))
        elif kind == "glued":
            queries.append(rng.choice(GLUED))
        elif kind == "fewer_terms":
            queries.append(f"{name} 总工程师" if row["position"] != "总工程师" else f"{name} 值班员")
        elif kind == "sound_alike":
            queries.append(rng.choice(SOUND_ALIKE))
        elif kind == "polyphonic":
            queries.append(_second_reading(name))
        elif kind == "namesake":
            head = "" if row["region"] == "市级" else row["region"][:-1]
            queries.append(f"{head} {name} {row['position']}".strip())
        elif kind == "name":
            queries.append(name)
        elif kind == "part":
            queries.append(name[1:] if len(name) > 2 else name[:1])
        elif kind == "trad":
            queries.append(t2s.convert(name))
        elif kind == "pinyin":
            queries.append("".join(py))
        elif kind == "pinyin_space":
            queries.append(" ".join(py))
        elif kind == "initials":
            queries.append("".join(p[0] for p in py))
        elif kind == "mixed":
            queries.append(name[0] + "".join(p[0] for p in py[1:]))
        elif kind == "phone":
            queries.append(row["office_phone"][-4:])
        elif kind == "short":
            queries.append(row["short_number"] or row["mobile"][-6:])
        elif kind == "broad":
            queries.append(rng.choice(BROAD))
        else:
            queries.append(rng.choice([p for p, _r, _a in department_plan()]).split("/")[-1])
    return queries


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds."""
    ordered = sorted(samples)

    def pick(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3)

    return {"p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99)}


def timed(fn: Any, queries: list[str], rounds: int) -> list[float]:
    """Per-query wall time in ms over `rounds` passes."""
    samples = []
    for _ in range(rounds):
        for q in queries:
            started = time.perf_counter()
            fn(q)
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def sqlite_baselines(db_path: Path, queries: list[str], rounds: int) -> dict[str, dict[str, float]]:
    """FTS5 trigram ranked by bm25, and a plain LIKE scan ranked by where the match falls."""
    conn = sqlite3.connect(db_path)
    conn.execute("DROP TABLE IF EXISTS bench_flat")
    conn.execute(
        "CREATE TABLE bench_flat AS SELECT c.id, c.name, d.path AS department_path, c.position, c.office_phone "
        "FROM dir_contact c JOIN dir_department d ON d.id = c.department_id"
    )
    conn.execute("DROP TABLE IF EXISTS bench_fts")
    conn.execute(
        "CREATE VIRTUAL TABLE bench_fts USING fts5(name, department_path, position, office_phone, tokenize='trigram')"
    )
    conn.execute("INSERT INTO bench_fts(rowid, name, department_path, position, office_phone) SELECT * FROM bench_flat")
    conn.commit()

    def tokens(q: str) -> list[str]:
        return [t for t in q.replace("-", "").split() if t] or [q]

    def fts(q: str) -> None:
        toks = tokens(q)
        if all(len(t) >= 3 for t in toks):
            match = " AND ".join('"' + t.replace('"', '""') + '"' for t in toks)
            conn.execute("SELECT count(*) FROM bench_fts WHERE bench_fts MATCH ?", (match,)).fetchone()
            conn.execute(
                "SELECT rowid FROM bench_fts WHERE bench_fts MATCH ? ORDER BY bm25(bench_fts) LIMIT 20", (match,)
            ).fetchall()
        else:  # trigram cannot index 1-2 character terms: FTS5 answers them by scanning (LIKE on the table)
            where = " AND ".join("(name LIKE ? OR department_path LIKE ? OR position LIKE ?)" for _ in toks)
            args = [f"%{t}%" for t in toks for _ in range(3)]
            conn.execute(f"SELECT count(*) FROM bench_fts WHERE {where}", args).fetchone()
            conn.execute(f"SELECT rowid FROM bench_fts WHERE {where} LIMIT 20", args).fetchall()

    def like(q: str) -> None:
        toks = tokens(q)
        where = " AND ".join(
            "(name LIKE ? OR department_path LIKE ? OR position LIKE ? OR office_phone LIKE ?)" for _ in toks
        )
        args = [f"%{t}%" for t in toks for _ in range(4)]
        t0 = toks[0]
        conn.execute(f"SELECT count(*) FROM bench_flat WHERE {where}", args).fetchone()
        conn.execute(
            f"SELECT id FROM bench_flat WHERE {where} ORDER BY (name = ?) DESC, instr(name, ?) = 0, instr(name, ?), "
            "instr(department_path, ?) = 0, instr(position, ?) = 0, id LIMIT 20",
            [*args, t0, t0, t0, t0, t0],
        ).fetchall()

    results = {}
    for name, fn in (("fts5", fts), ("like", like)):
        timed(fn, queries[:20], 1)  # warm the page cache
        results[name] = percentiles(timed(fn, queries, rounds))
    conn.close()
    return results


def http_p95(settings: Settings, queries: list[str]) -> float:
    """p95 of the search endpoint over loopback HTTP (uvicorn in a thread, anonymous caller)."""
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    samples = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for q in queries[:20]:
            client.get("/api/v1/contacts/search", params={"q": q})
        for q in queries:
            started = time.perf_counter()
            response = client.get("/api/v1/contacts/search", params={"q": q})
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
    server.should_exit = True
    thread.join(10)
    return percentiles(samples)["p95_ms"]


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=440)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    started_load = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="gc-bench-") as tmp:
        data_dir = Path(tmp)
        db_path = data_dir / "govconnect.db"
        db_url = f"sqlite:///{db_path}"
        upgrade(db_url)
        t0 = time.perf_counter()
        rows = load(db_url, args.count)
        print(f"loaded {len(rows)} contacts in {time.perf_counter() - t0:.1f}s", flush=True)
        engine = make_engine(db_url)
        ix = directory_index(data_dir)
        t0 = time.perf_counter()
        with Session(engine) as session:
            indexed = rebuild_index(session, ix)
        build_s = time.perf_counter() - t0
        print(f"indexed {indexed} contacts in {build_s:.1f}s", flush=True)
        queries = query_set(rows, args.queries)
        del rows  # the generated data is the bench's, not the search's: keep it out of the RSS figure
        gc.collect()
        new_kinds = [q for i, q in enumerate(queries) if KINDS[i % len(KINDS)] in NEW_KINDS]
        t0 = time.perf_counter()
        search_directory(data_dir, "张伟", privileged=False)  # open the searcher, load jieba
        cold_queries = timed(lambda q: search_directory(data_dir, q, privileged=False), queries, 1)
        print(f"first pass (cold caches) {time.perf_counter() - t0:.1f}s, p95 {percentiles(cold_queries)['p95_ms']} ms")
        mixed = timed(lambda q: search_directory(data_dir, q, privileged=(hash(q) % 2 == 0)), queries, args.rounds)
        ours = percentiles(mixed)
        rss = psutil.Process().memory_info().rss / 1_048_576
        settings = Settings(
            data_dir=data_dir, database_url=db_url, secret_key="bench-secret-0123456789", log_level="WARNING"
        )  # noqa: S106
        ours["http_p95_ms"] = http_p95(settings, queries)
        ours["build_s"] = round(build_s, 2)
        ours["rss_mb"] = round(rss, 1)
        ours["cold_p95_ms"] = percentiles(cold_queries)["p95_ms"]
        ours["queries"] = len(queries)
        ours["contacts"] = indexed
        broad = [q for q in queries if q in BROAD]
        ours["broad_p95_ms"] = percentiles(timed(lambda q: search_directory(data_dir, q, privileged=False), broad, 3))[
            "p95_ms"
        ]
        ours["new_kinds_p95_ms"] = percentiles(
            timed(lambda q: search_directory(data_dir, q, privileged=False), new_kinds, args.rounds)
        )["p95_ms"]
        ours["new_kinds_empty"] = sum(1 for q in new_kinds if not search_directory(data_dir, q, privileged=False).total)
        engine.dispose()
        baselines = sqlite_baselines(db_path, queries, 1)
        machine = {"loadavg_start": started_load, "loadavg_end": [round(x, 2) for x in os.getloadavg()]}
        print(json.dumps({"govconnect": ours, **baselines, "machine": machine}, ensure_ascii=False))


if __name__ == "__main__":
    main()
