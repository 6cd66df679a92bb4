"""Two `govconnect serve` processes, separate data dirs, one database: changes made through node A
reach node B's search index, and a node that starts empty rebuilds from the database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from tests.factories import make_agency, make_key

SECRET = "nodes-test-secret-0123456789"  # noqa: S105
PROPAGATION_LIMIT_S = 2.0
START_LIMIT_S = 90.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Node:
    """One `govconnect serve` subprocess with its own DATA_DIR."""

    def __init__(self, name: str, db_url: str, data_dir: Path) -> None:
        self.name = name
        self.port = _free_port()
        self.log_path = data_dir.parent / f"{name}.log"
        env = {
            **os.environ,
            "GOVCONNECT_DATABASE_URL": db_url,
            "GOVCONNECT_DATA_DIR": str(data_dir),
            "GOVCONNECT_SECRET_KEY": SECRET,
            "GOVCONNECT_REDIS_URL": "",
            "GOVCONNECT_LOG_LEVEL": "WARNING",
        }
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "govconnect", "serve", "--port", str(self.port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_LIMIT_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text(errors="replace")
            try:
                if self.client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"node {self.name} did not start: {self.log_path.read_text(errors='replace')}")

    def search(self, q: str, key: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = self.client.get("/api/v1/contacts/search", params={"q": q}, headers=headers)
        assert response.status_code == 200, (self.name, q, response.status_code, response.text)
        return dict(response.json())

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


@pytest.fixture
def nodes(db_url: str, tmp_path: Path, engine: Engine) -> Iterator[Callable[[str], Node]]:
    started: list[Node] = []

    def start(name: str) -> Node:
        node = Node(name, db_url, tmp_path / name)
        started.append(node)
        node.wait_ready()
        return node

    try:
        yield start
    finally:
        for node in started:
            node.stop()


def _wait_for(check: Callable[[], bool], limit_s: float) -> float:
    """Seconds until `check` held (polling every 50 ms); fails after `limit_s`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < limit_s, f"not within {limit_s}s"
        time.sleep(0.05)
    return time.monotonic() - started


def _names(node: Node, q: str, key: str | None = None) -> list[str]:
    return [item["name"] for item in node.search(q, key)["items"]]


def test_a_change_through_node_a_reaches_node_b(nodes: Callable[[str], Node], session: Session) -> None:
    key = make_key(session, make_agency(session), ["contacts:write"]).key
    auth = {"Authorization": f"Bearer {key}"}
    a = nodes("a")
    created = a.client.post(
        "/api/v1/contacts",
        json={"name": "欧阳晓燕", "department": "衢州市医疗保障局", "position": "局长", "region": "市级"},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    contact_id = created.json()["id"]
    assert _names(a, "欧阳晓燕") == ["欧阳晓燕"]

    # B starts with an empty data dir while the database already holds a contact: it rebuilds, and
    # answers (possibly nothing yet) but never an error while it does.
    b = nodes("b")
    for q in ("张伟", "zw", "张w", "经信局", "规化科", "6688", "秘书科科长", "AND (", "*"):
        b.search(q)  # answers 200 whatever B has indexed so far
    for q, code in (("", "query_empty"), ("张" * 101, "query_too_long")):
        response = b.client.get("/api/v1/contacts/search", params={"q": q})
        assert response.status_code == 422 and response.json()["error"]["code"] == code
    _wait_for(lambda: _names(b, "oyxy") == ["欧阳晓燕"], START_LIMIT_S)
    assert _names(b, "医保局") == ["欧阳晓燕"]  # derived short names work on the rebuilt node too

    changes: list[tuple[str, float]] = []
    renamed = a.client.patch(f"/api/v1/contacts/{contact_id}", json={"name": "欧阳晓红"}, headers=auth)
    assert renamed.status_code == 200, renamed.text
    changes.append(("rename", _wait_for(lambda: _names(b, "欧阳晓红") == ["欧阳晓红"], PROPAGATION_LIMIT_S)))
    assert b.search("欧阳晓燕")["total"] == 0

    second = a.client.post(
        "/api/v1/contacts",
        json={"name": "诸葛明", "department": "衢州市医疗保障局/办公室", "position": "科员", "visibility": "staff"},
        headers=auth,
    )
    assert second.status_code == 201, second.text
    changes.append(("create", _wait_for(lambda: _names(b, "诸葛明", key) == ["诸葛明"], PROPAGATION_LIMIT_S)))
    assert b.search("诸葛明")["total"] == 0  # staff-only on B as well

    dept_id = next(
        d["id"] for d in a.client.get("/api/v1/departments", headers=auth).json() if d["path"] == "衢州市医疗保障局"
    )
    moved = a.client.patch(f"/api/v1/departments/{dept_id}", json={"aliases": ["市医保"]}, headers=auth)
    assert moved.status_code == 200, moved.text
    changes.append(("alias", _wait_for(lambda: _names(b, "市医保") == ["欧阳晓红"], PROPAGATION_LIMIT_S)))

    gone = a.client.delete(f"/api/v1/contacts/{contact_id}", headers=auth)
    assert gone.status_code == 204
    changes.append(("delete", _wait_for(lambda: b.search("欧阳晓红")["total"] == 0, PROPAGATION_LIMIT_S)))
    print("propagation seconds:", changes)
