"""A bounded fuzz run: schemathesis 4 against the app's own /openapi.json, on PostgreSQL with the demo data.

Two runs over real HTTP (uvicorn in a thread: schemathesis' in-process ASGI transport hangs on the
app's lifespan), one with the demo's admin key and one without a key. Every answer must be below
500 and match what /openapi.json declares: status code, media type, headers and body schema.

Bounded for the suite (about a minute on a 2-core machine); a longer run is opt-in, e.g.
`GOVCONNECT_FUZZ_EXAMPLES=50 GOVCONNECT_FUZZ_PHASES=examples,coverage,fuzzing GOVCONNECT_FUZZ_SEED=random`.
The coverage phase adds boundary values and undeclared methods (the `unsupported_method` check).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from govconnect.app import create_app
from govconnect.demo.seed import seed_demo
from govconnect.settings import Settings
from tests.http_server import ThreadServer

EXAMPLES = int(os.environ.get("GOVCONNECT_FUZZ_EXAMPLES", "4"))  # per operation and run
PHASES = os.environ.get("GOVCONNECT_FUZZ_PHASES", "examples,fuzzing")
SEED = os.environ.get("GOVCONNECT_FUZZ_SEED", "20261201")  # fixed: the suite's run is repeatable
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]
RUN_TIMEOUT_S = 60 + 30 * EXAMPLES


@pytest.fixture
def db_backend() -> str:
    """PostgreSQL only: the fuzz run is the costly part, and production's database is the one to fuzz."""
    return "postgresql"


@pytest.fixture
def demo_server(settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """The demo data and the app on a loopback port: (base URL, the demo's admin key)."""
    settings = settings.model_copy(update={"api_rate_limit": "1000000/minute"})  # fuzzing is not a flood
    monkeypatch.setattr("govconnect.demo.directory.DEMO_CONTACTS", 300)  # 3000 take 8 s to index, and fuzz no better
    info = seed_demo(engine, settings)
    with ThreadServer(create_app(settings, engine=engine)) as server:
        yield server.url, info.api_key


def schemathesis(url: str, workdir: Path, headers: list[str]) -> subprocess.CompletedProcess[str]:
    """One `schemathesis run` against the app's schema; the exit code says whether any check failed."""
    checks = [*CHECKS, "unsupported_method"] if "coverage" in PHASES else CHECKS
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json"]
    command += ["--checks", ",".join(checks), "--phases", PHASES, "--max-examples", str(EXAMPLES)]
    command += ["--workers", "1", "--request-timeout", "10", "--generation-database", "none", "--no-color"]
    if SEED != "random":
        command += ["--seed", SEED]
    for header in headers:
        command += ["--header", header]
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        command, cwd=workdir, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )


def test_fuzzing_the_openapi_finds_no_server_error_and_no_schema_violation(
    demo_server: tuple[str, str], tmp_path: Path
) -> None:
    url, key = demo_server
    for label, headers in (("admin key", [f"Authorization: Bearer {key}"]), ("no key", [])):
        started = time.monotonic()
        run = schemathesis(url, tmp_path, headers)
        took = time.monotonic() - started
        summary = run.stdout[run.stdout.find("=== FAILURES") :] if "=== FAILURES" in run.stdout else run.stdout[-3000:]
        assert run.returncode == 0, f"{label} ({took:.0f} s):\n{summary[:12000]}\n{run.stderr[-2000:]}"
        assert " passed" in run.stdout, run.stdout[-2000:]  # it did test something
        print(f"fuzz {label}: {took:.1f} s, {run.stdout.strip().splitlines()[-1]}")
