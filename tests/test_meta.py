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
