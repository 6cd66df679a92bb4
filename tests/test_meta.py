"""Cheap checks that catch whole classes of bugs."""

from __future__ import annotations

import ast
from pathlib import Path

from fastapi.routing import APIRoute

from govconnect.app import PUBLIC_PATHS, create_app
from govconnect.settings import Settings
from tests.routes import api_routes

ROOT = Path(__file__).resolve().parent.parent
AUTH_DEPENDENCIES = {"get_principal", "get_optional_principal", "get_viewer", "require_staff"}

# Which top-level packages each package may import (govconnect → contacts, search, channels; never back).
ALLOWED = {
    "channels": {"channels"},
    "search": {"search"},
    "contacts": {"contacts", "search"},
    "govconnect": {"govconnect", "contacts", "search", "channels"},
}
FORBIDDEN_IN_LIBS = {"fastapi", "starlette"}


def _dependency_names(route: APIRoute) -> set[str]:
    names: set[str] = set()
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        if dep.call is not None:
            names.add(getattr(dep.call, "__name__", ""))
        stack.extend(dep.dependencies)
    return names


def test_every_api_route_authenticates_or_is_public(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, secret_key="x" * 20))  # noqa: S106
    unprotected = []
    routes = api_routes(app)  # app.routes alone misses included routers on FastAPI 0.16x
    assert len(routes) > 30
    for path, route in routes:
        if path in PUBLIC_PATHS:
            continue
        names = _dependency_names(route)
        if not (names & AUTH_DEPENDENCIES or any(n.startswith("require_") for n in names)):
            if getattr(route.endpoint, "public", False):
                continue
            unprotected.append(path)
    assert unprotected == []


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_package_import_direction() -> None:
    violations = []
    packages = set(ALLOWED)
    for package, allowed in ALLOWED.items():
        for path in (ROOT / package).rglob("*.py"):
            imported = _imports(path)
            bad = (imported & packages) - allowed
            if package in ("channels", "search", "contacts") and package != "channels":
                bad |= imported & FORBIDDEN_IN_LIBS
            if package == "search":
                bad |= imported & {"sqlmodel", "sqlalchemy"}
            if bad:
                violations.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert violations == []


# The package root holds wiring only; each domain has its folder (docs/architecture.md).
ROOT_WIRING_MODULES = {
    "__init__",
    "__main__",
    "app",
    "clock",
    "db",
    "errors",
    "escaping",  # one escaping helper per place a value goes (DESIGN.md "Trust")
    "jobs",
    "logging",
    "metrics",
    "middleware",
    "model_registry",
    "process",
    "security",
    "settings",
    "text_rules",  # the text every input accepts
    "worker",
}
# Folders that sit at the edge (pages, API, CLI, demo seeding) rather than in a domain.
EDGE_FOLDERS = {"api", "web", "console", "cli", "demo", "migrations"}
EDGE_MODULES = ("govconnect.app", "govconnect.cli", "govconnect.demo", "govconnect.web", "govconnect.console")


def _govconnect_imports(path: Path) -> set[str]:
    """Every `govconnect.…` module a file imports, at any depth (lazy imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("govconnect"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("govconnect"):
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_package_root_holds_only_wiring() -> None:
    root = ROOT / "govconnect"
    modules = {path.stem for path in root.glob("*.py")}
    assert modules - ROOT_WIRING_MODULES == set(), "domain modules belong in a domain folder"


def test_domains_never_import_the_edges() -> None:
    """Domain folders and wiring below the app never import the app, the pages, the CLI or the demo."""
    violations = []
    for path in (ROOT / "govconnect").rglob("*.py"):
        parts = path.relative_to(ROOT / "govconnect").parts
        if parts[0] in EDGE_FOLDERS or parts[0] in {"app.py", "__main__.py"}:
            continue
        bad = {m for m in _govconnect_imports(path) if any(_within(m, edge) for edge in EDGE_MODULES)}
        if bad:
            violations.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert violations == []


def test_cli_modules_never_import_the_entry_point() -> None:
    """CLI area modules share helpers through `govconnect.cli.common`, which imports no other CLI module."""
    violations = []
    cli = ROOT / "govconnect" / "cli"
    for path in cli.glob("*.py"):
        if path.name == "__init__.py":
            continue
        cli_imports = {m for m in _govconnect_imports(path) if _within(m, "govconnect.cli")}
        shared = path.name != "common.py"
        bad = {m for m in cli_imports if not (shared and _within(m, "govconnect.cli.common"))}
        if bad:
            violations.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    outside = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "govconnect").rglob("*.py")
        if cli not in path.parents
        and path.name != "__main__.py"
        and any(_within(m, "govconnect.cli") for m in _govconnect_imports(path))
    ]
    assert violations == []
    assert outside == []


def test_only_the_http_edge_speaks_http_errors() -> None:
    """Services raise DomainError kinds; ApiError (an HTTP status) belongs to API routes and their dependencies."""
    users = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "govconnect").rglob("*.py")
        if "govconnect.errors.ApiError" in _govconnect_imports(path)
        and path.relative_to(ROOT / "govconnect").parts[0] != "api"
        and path.name != "api.py"  # a domain's own routes (citizens/api.py ...)
    ]
    assert users == []


UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def test_every_page_form_goes_through_the_csrf_dependency(tmp_path: Path) -> None:
    """Pages check CSRF in one router dependency; a new page POST without it fails here."""
    app = create_app(Settings(data_dir=tmp_path, secret_key="x" * 20))  # noqa: S106
    pages = [
        (path, route) for path, route in api_routes(app) if route.methods & UNSAFE and not path.startswith("/api/")
    ]
    assert len(pages) >= 10
    missing = [path for path, route in pages if "verify_csrf" not in _dependency_names(route)]
    assert missing == []


def _enqueued_job_names() -> dict[str, str]:
    """Every job name passed as a literal to `.enqueue(...)` in the code, with where it was found."""
    found: dict[str, str] = {}
    for package in ALLOWED:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("enqueue", "enqueue_job")
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                ):
                    found[node.args[0].value] = f"{path.relative_to(ROOT)}:{node.lineno}"
    return found


def test_every_enqueued_job_name_is_registered() -> None:
    from govconnect.jobs import JOBS, load_job_modules

    load_job_modules()
    names = _enqueued_job_names()
    assert {"fanout_notice", "send_deliveries", "sweep"} <= set(names)
    assert {name: where for name, where in names.items() if name not in JOBS} == {}


def test_china_time_is_defined_once() -> None:
    """UTC+8 is `channels.base.CHINA_TZ` (re-exported by govconnect.clock); nothing defines its own."""
    pattern = ("timedelta(hours=8)", 'ZoneInfo("Asia/Shanghai")', "ZoneInfo('Asia/Shanghai')")
    found = [
        str(path.relative_to(ROOT))
        for package in ALLOWED
        for path in (ROOT / package).rglob("*.py")
        if any(p in path.read_text(encoding="utf-8") for p in pattern)
    ]
    assert found == ["channels/base.py"]
