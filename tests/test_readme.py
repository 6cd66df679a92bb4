"""The README's tour runs against `serve --demo` as written, and the demo's own printed commands work.

Every ```console block of README.md is a script: `$ ` starts a command (a line ending in `\\`
continues it), and the lines up to the next command are what it prints; `...` in them matches any
text. The blocks run in order, in bash, against a `govconnect serve --demo` started here on a free
port with an empty data dir (the README's `127.0.0.1:8000` becomes that port) and `KEY` set to the
key the demo printed. A command that only reads (no `-X`, no `-d`/`--data`) is retried for a few
seconds until it prints what the README says, since the broadcast it follows is delivered a moment
later.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_BASE = "127.0.0.1:8000"
RETRY_SECONDS = 30.0

pytestmark = pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None, reason="needs curl, bash")


@dataclass
class Example:
    """One `$ ` command of a console block and the output the README shows for it."""

    line: int
    command: str
    expected: str

    def reads_only(self) -> bool:
        return not re.search(r"(^|\s)(-X|-d|--data\S*)\s", self.command)


def readme_examples(text: str) -> list[Example]:
    """Every command of every ```console block, in order."""
    examples: list[Example] = []
    lines = text.splitlines()
    inside = False
    current: Example | None = None
    continued = False
    for number, line in enumerate(lines, start=1):
        if line.startswith("```"):
            if not inside and line.strip() == "```console":
                inside = True
            elif inside:
                inside = False
                current, continued = None, False
            continue
        if not inside:
            continue
        if continued and current is not None:
            current.command += "\n" + line
            continued = line.endswith("\\")
        elif line.startswith("$ "):
            current = Example(number, line[2:], "")
            examples.append(current)
            continued = line.endswith("\\")
        elif current is not None:
            current.expected += line + "\n"
    return examples


def matches(expected: str, actual: str) -> bool:
    """Whether `actual` is what the README shows, `...` standing for any text."""
    pattern = ".*?".join(re.escape(part) for part in expected.strip().split("..."))
    return re.fullmatch(pattern, actual.strip(), flags=re.DOTALL) is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DemoServer:
    """`govconnect serve --demo` in a subprocess, as the README starts it (embedded: no Redis, SQLite)."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.banner = ""
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        keep = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
        return {**keep, "GOVCONNECT_DATA_DIR": str(self.data_dir), "PYTHONUNBUFFERED": "1"}

    def start(self) -> str:
        out = self.data_dir.parent / f"banner-{time.monotonic_ns()}.txt"
        with out.open("wb") as sink:
            self.process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "govconnect", "serve", "--demo", "--port", str(self.port)],
                cwd=self.data_dir.parent,
                env=self.env(),
                stdout=sink,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, out.read_text()
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            raise AssertionError("serve --demo did not answer /healthz within 120 s")
        self.banner = out.read_text(encoding="utf-8")
        return self.banner

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None


def banner_value(banner: str, label: str) -> str:
    line = next(line for line in banner.splitlines() if line.strip().startswith(label))
    return line.split()[-1]


def bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        ["bash", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,  # noqa: S607
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    server = DemoServer(tmp_path_factory.mktemp("readme") / "var", _free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_readme_keeps_the_ci_test_command_and_no_macos_open() -> None:
    text = README.read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && .venv/bin/python -m pytest"
    assert command in text and command in ci
    assert not re.search(r"(^|\s|\$ )open http", text, flags=re.MULTILINE)
    assert "SECURITY.md" in text


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_links_between_the_pages_resolve() -> None:
    pages = [README, ROOT / "SECURITY.md", *sorted((ROOT / "docs").glob("*.md"))]
    checked = 0
    for page in pages:
        for target, anchor in re.findall(r"\]\(([^)#\s]*\.md|)(?:#([\w-]+))?\)", page.read_text(encoding="utf-8")):
            linked = (page.parent / target).resolve() if target else page
            assert linked.exists(), (page.name, target)
            if anchor:
                assert anchor in _anchors(linked), (page.name, target, anchor)
            checked += 1
    assert checked > 20


def test_every_readme_example_prints_what_the_readme_says(demo: DemoServer) -> None:
    examples = readme_examples(README.read_text(encoding="utf-8"))
    assert len(examples) >= 8, examples
    env = {**demo.env(), "KEY": banner_value(demo.banner, "API key")}
    base = f"127.0.0.1:{demo.port}"
    for example in examples:
        command = example.command.replace(README_BASE, base)
        expected = example.expected.replace(README_BASE, base)
        deadline = time.monotonic() + (RETRY_SECONDS if example.reads_only() else 0)
        while True:
            done = bash(command, env)
            if done.returncode == 0 and matches(expected, done.stdout):
                break
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"README.md line {example.line}: {example.command}\n"
                    f"exit {done.returncode}; expected:\n{expected}\ngot:\n{done.stdout}{done.stderr}"
                )
            time.sleep(0.5)


def test_the_printed_broadcast_sends_every_time_and_a_restart_keeps_the_credentials(demo: DemoServer) -> None:
    flood = next(line for line in demo.banner.splitlines() if line.strip().startswith("flood:"))
    command = flood.split("flood:", 1)[1].strip()
    env = demo.env()
    ids = []
    for _ in range(2):
        done = bash(command + " -s", env)
        assert done.returncode == 0, done.stderr
        ids.append(httpx.Response(200, content=done.stdout).json()["id"])
    assert ids[0] != ids[1]  # the second run is a new notice, not the first one answered again

    key = banner_value(demo.banner, "API key")
    password = demo.banner.split("password 密码:", 1)[1].split()[0]
    demo.stop()
    banner = demo.start()
    assert banner_value(banner, "API key") == key
    assert banner.split("password 密码:", 1)[1].split()[0] == password
    assert "same credentials" in banner and "CHANGED" not in banner
    me = httpx.get(f"{demo.base}/api/v1/agencies/me", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert me.status_code == 200 and me.json()["code"] == "qz-demo"
    assert command.split("Bearer ", 1)[1].split("'", 1)[0] in banner  # the flood key is kept too


def test_examples_are_parsed_as_written() -> None:
    text = "```console\n$ echo a \\\n  b\na b\n$ true\n```\n```sh\n$ not-run\n```\n"
    examples = readme_examples(text)
    assert [(e.command, e.expected) for e in examples] == [("echo a \\\n  b", "a b\n"), ("true", "")]
    assert matches('{"id":...,"x":1}', '{"id":42,"x":1}') and not matches('{"x":1}', '{"x":2}')
    assert Example(1, "curl -s http://x", "").reads_only() and not Example(1, "curl -d '{}' http://x", "").reads_only()
