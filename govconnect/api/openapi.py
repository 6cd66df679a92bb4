"""What `/openapi.json` declares beyond FastAPI's defaults, derived from the routes, never written per route.

- The Bearer key (`Authorization: Bearer <key>`) as the `bearerAuth` security scheme, on every
  operation whose dependencies take the key (`api.deps.takes_key`): required, or optional.
- The one error shape (`{"error": {"code", "message", "details"}}`) as the `Error` component for
  each status an operation can answer: 401/429 where a key is read, 403 where a scope is demanded,
  404 where the path or body names an object, 409 on changes, 400/413 where a JSON body is read,
  422 where anything is read, 503 wherever admission control or the database pool may refuse, 405
  (with `Allow`) everywhere, and whatever a dependency marks with `may_answer(...)` (the API
  routers' unknown-query check: 422). FastAPI's own 422 (`HTTPValidationError`, a shape we never
  send) is replaced.
- Routes that answer files (CSV, XLSX, SVG) or HTML beside JSON declare those media types with
  `media_responses(...)` in their decorator: what a route returns is the route's own business.

`allowed_methods` answers 405 with every method the path supports (Starlette names only the first
route that matched the path).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from govconnect.api.admission import UNMETERED_PATHS
from govconnect.api.deps import KEY_OPTIONAL, KEY_REQUIRED
from govconnect.errors import MESSAGES, error_answer

F = TypeVar("F", bound=Callable[..., Any])
SCHEME = "bearerAuth"
METRICS_SCHEME = "metricsToken"
ERROR_SCHEMA = "Error"
ERROR_REF = f"#/components/schemas/{ERROR_SCHEMA}"
MEDIA_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "svg": "image/svg+xml",
    "prometheus": "text/plain",
    "html": "text/html",
}
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
CHANGE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CONVERTOR = re.compile(r"{(\w+):[^}]+}")
METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# status -> (component name, description, headers)
ERROR_RESPONSES: dict[int, tuple[str, str, tuple[str, ...]]] = {
    400: ("BadRequest", "请求体不是有效的 JSON / Malformed JSON body", ()),
    401: ("Unauthorized", "未提供或无效的 API 密钥 / Missing, invalid or revoked API key", ("WWW-Authenticate",)),
    403: ("Forbidden", "密钥缺少所需权限 / The key lacks the required scope", ()),
    404: ("NotFound", "资源不存在或不属于本单位 / No such object, or another agency's", ()),
    405: ("MethodNotAllowed", "不支持该请求方法 / Method not allowed; `Allow` lists the path's methods", ("Allow",)),
    409: ("Conflict", "与当前状态冲突 / Conflicts with the object's current state", ()),
    413: ("PayloadTooLarge", "请求体过大 / Request body too large", ()),
    422: ("ValidationFailed", "请求参数无效 / A parameter or the body is invalid", ()),
    429: ("RateLimited", "请求过于频繁 / Too many requests; retry after `Retry-After` seconds", ("Retry-After",)),
    503: ("Unavailable", "服务繁忙 / Too busy; retry after `Retry-After` seconds", ("Retry-After",)),
}
HEADERS: dict[str, dict[str, Any]] = {
    "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}},
    "Allow": {
        "description": "每个支持的方法 / Every method this path supports",
        "required": True,
        "schema": {"type": "string"},
    },
    "Retry-After": {"description": "秒 / Seconds to wait", "schema": {"type": "integer", "minimum": 0}},
}


def media_responses(*kinds: str, with_json: bool = True) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route whose 200 can be a file (`csv`, `xlsx`, `svg`...) or a page, and JSON if `with_json`."""
    content: dict[str, Any] = {MEDIA_TYPES[kind]: {"schema": {"type": "string", "format": "binary"}} for kind in kinds}
    if with_json:
        content["application/json"] = {}
    return {200: {"content": content}}


def error_declaration(description: str) -> dict[str, Any]:
    """`responses=` entry for an error a route answers beyond what the hook derives (e.g. /readyz's 503)."""
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ERROR_REF}}}}


def _error_schema() -> dict[str, Any]:
    return {
        "title": ERROR_SCHEMA,
        "description": "错误 / The one error shape every JSON route answers with",
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "machine-readable, e.g. `not_found`"},
                    "message": {"type": "string", "description": "中文 / English", "examples": [MESSAGES["not_found"]]},
                    "details": {"description": "what was wrong, where it helps (may be null)"},
                },
            }
        },
    }


def _error_response(status: int) -> dict[str, Any]:
    _name, description, headers = ERROR_RESPONSES[status]
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
    }
    if headers:
        response["headers"] = {name: HEADERS[name] for name in headers}
    return response


def _dependency_calls(dependant: Any) -> Iterator[Any]:
    stack = [dependant]
    while stack:
        node = stack.pop()
        if node.call is not None:
            yield node.call
        stack.extend(node.dependencies)


def may_answer(*statuses: int) -> Callable[[F], F]:
    """Mark a dependency that can answer these error statuses whatever the route (e.g. 422 for unknown query names)."""

    def mark(func: F) -> F:
        func.__dict__["may_answer"] = frozenset(statuses)
        return func

    return mark


def _marks(dependant: Any) -> tuple[str | None, bool, set[int]]:
    """From the marks on the route's dependencies: `required`/`optional`/None key, whether a scope is
    demanded, and the statuses the dependencies say they may answer."""
    kinds = set()
    scoped = False
    statuses: set[int] = set()
    for call in _dependency_calls(dependant):
        statuses |= getattr(call, "may_answer", frozenset())
        kind = getattr(call, "takes_key", None)
        if kind is not None:
            kinds.add(kind)
            scoped = scoped or getattr(call, "required_scope", None) is not None
    kind = KEY_REQUIRED if KEY_REQUIRED in kinds else (KEY_OPTIONAL if kinds else None)
    return kind, scoped, statuses


def _statuses(path: str, method: str, operation: dict[str, Any], key: str | None, scoped: bool) -> set[int]:
    statuses = {405}
    if not path.startswith(UNMETERED_PATHS):
        statuses.add(503)
    if key is not None:
        statuses |= {401, 429}
    elif operation.get("security"):  # declared by the route itself (/metrics and its token)
        statuses.add(401)
    if scoped:
        statuses.add(403)
    locations = {p.get("in") for p in operation.get("parameters", [])}
    names_an_object = "requestBody" in operation or any(
        p.get("in") == "query" and p.get("name", "").endswith("_id") for p in operation.get("parameters", [])
    )
    if "path" in locations or (key is not None and names_an_object):  # a body or query can name an object too
        statuses.add(404)
    if locations or "requestBody" in operation:
        statuses.add(422)
    if "requestBody" in operation:
        statuses.add(400)
    if method in BODY_METHODS:
        statuses.add(413)
    if key is not None and method in CHANGE_METHODS:
        statuses.add(409)
    return statuses


def route_contexts(app: FastAPI) -> Iterator[tuple[str, Any]]:
    """(full path, route) for every route the app serves, included routers' too (FastAPI old and new)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # a FastAPI that keeps app.routes flat
        for route in app.routes:
            yield getattr(route, "path", ""), route
        return
    for context in iter_route_contexts(app.routes):
        yield str(context.path or ""), context


def _declare(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "API 密钥 / The agency's API key: `Authorization: Bearer <key>`",
    }
    components["securitySchemes"][METRICS_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "指标令牌 / GOVCONNECT_METRICS_TOKEN, for /metrics only",
    }
    components.setdefault("schemas", {})[ERROR_SCHEMA] = _error_schema()
    responses = components.setdefault("responses", {})
    paths = schema.get("paths", {})
    for route_path, context in route_contexts(app):
        path = CONVERTOR.sub(r"{\1}", route_path)  # "/contacts/{contact_id:int}" is "/contacts/{contact_id}" there
        dependant = getattr(context, "dependant", None)
        if dependant is None or path not in paths or not getattr(context, "include_in_schema", True):
            continue
        key, scoped, answered = _marks(dependant)
        for method in sorted(getattr(context, "methods", None) or ()):
            operation = paths[path].get(method.lower())
            if operation is None:
                continue
            if key == KEY_REQUIRED:
                operation["security"] = [{SCHEME: []}]
            elif key == KEY_OPTIONAL:
                operation["security"] = [{}, {SCHEME: []}]
            declared = operation.setdefault("responses", {})
            for status in sorted(_statuses(path, method, operation, key, scoped) | answered):
                name = ERROR_RESPONSES[status][0]
                responses[name] = _error_response(status)
                declared[str(status)] = {"$ref": f"#/components/responses/{name}"}
    schemas = components["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 shape, replaced above
        if f"#/components/schemas/{unused}" not in json.dumps(schema):
            schemas.pop(unused, None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` (and so `/openapi.json`) declare keys, errors and 405 as described above."""

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = generate()
        return _declare(app, schema) if fresh else schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(405, method_not_allowed)


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route serves at this path, in the usual order."""
    table: list[tuple[re.Pattern[str], frozenset[str]]] | None = getattr(app.state, "method_table", None)
    if table is None:
        table = []
        for route_path, context in route_contexts(app):
            methods = getattr(context, "methods", None)
            if route_path and methods:
                table.append((compile_path(route_path)[0], frozenset(methods)))
        app.state.method_table = table
    found = {method for pattern, methods in table if pattern.match(path) for method in methods}
    return sorted(found, key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), m))


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    """405 in the error shape, `Allow` naming every method of the path (not only the first route's)."""
    methods = allowed_methods(request.app, request.scope["path"])
    if not methods and isinstance(exc, StarletteHTTPException) and exc.headers:
        methods = [m.strip() for m in exc.headers.get("Allow", "").split(",") if m.strip()]
    return error_answer(request, 405, "method_not_allowed", headers={"Allow": ", ".join(methods)})
