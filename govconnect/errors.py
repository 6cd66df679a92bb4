"""Errors: one tree for the domain, one JSON shape for the API, one HTML page for the site.

The domain's errors (raised by services; they never speak HTTP)::

    DomainError                 a request that breaks a rule: `code`, bilingual `message`, `details`
    ├── Invalid                 the input is wrong ................................ 422
    ├── NotFound                no such object, or not the caller's (never 403) ... 404
    ├── Forbidden               the caller may not do this ........................ 403
    ├── Conflict                clashes with the object's current state ........... 409
    │   └── InvalidTransition   a status change the transition table refuses ...... 409
    └── RateLimited             allowed, but not now: `retry_after` seconds ....... 429

Each edge maps them once:

- the API and every JSON route: `install_error_handlers` answers
  `{"error": {"code", "message", "details"}}` with the status above (429 adds Retry-After);
- pages (paths under `PAGE_PREFIXES`): the same handler renders the site's HTML error page
  with that status, through the renderer the web layer installs (`app.state.html_error_page`);
- the CLI prints `错误 / error: <message>` and exits 1.

`ApiError` is the HTTP edge's own error (authentication, scopes, request rate limits, malformed
callbacks): only routes and their dependencies raise it, never a service.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("govconnect.errors")

# Bilingual default messages by code: Chinese first, English beside it.
MESSAGES: dict[str, str] = {
    "unauthorized": "未提供或无效的 API 密钥 / Missing or invalid API key",
    "key_revoked": "API 密钥已吊销 / API key has been revoked",
    "forbidden": "权限不足 / The key lacks the required scope",
    "not_found": "资源不存在 / Not found",
    "method_not_allowed": "不支持该请求方法 / Method not allowed",
    "conflict": "资源冲突 / Conflict",
    "validation_error": "请求参数无效 / Request validation failed",
    "malformed_json": "请求体不是有效的 JSON / Request body is not valid JSON",
    "payload_too_large": "请求体过大 / Request body too large",
    "rate_limited": "请求过于频繁，请稍后再试 / Too many requests",
    "bad_request": "请求无效 / Bad request",
    "internal_error": "服务器内部错误 / Internal server error",
    "unavailable": "服务暂不可用 / Service unavailable",
    "invalid_transition": "当前状态下不允许此操作 / Not allowed in the current state",
    "overloaded": "服务繁忙，请稍后重试 / Too busy, retry shortly",
}

STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


class DomainError(Exception):
    """A request that breaks a rule; subclasses say which kind (and so which status the edges answer)."""

    status = 400
    default_code = "bad_request"

    def __init__(self, code: str | None = None, message: str | None = None, details: Any = None) -> None:
        self.code = code or self.default_code
        self.message = message or MESSAGES.get(self.code, self.code)
        self.details = details
        super().__init__(self.message)


class Invalid(DomainError):
    """The input is wrong: a value, a combination, a file."""

    status = 422
    default_code = "validation_error"


class NotFound(DomainError):
    """No such object, or one the caller may not see (another agency's object is not found, not forbidden)."""

    status = 404
    default_code = "not_found"


class Forbidden(DomainError):
    """The caller is known but may not do this (a role or scope is missing)."""

    status = 403
    default_code = "forbidden"


class Conflict(DomainError):
    """The request clashes with the current state (a duplicate, a reused key)."""

    status = 409
    default_code = "conflict"


class InvalidTransition(Conflict):
    """A status change the object's transition table does not allow from its current status."""

    default_code = "invalid_transition"


class RateLimited(DomainError):
    """Allowed, but not now: try again after `retry_after` seconds."""

    status = 429
    default_code = "rate_limited"

    def __init__(
        self, code: str | None = None, message: str | None = None, retry_after: int = 60, details: Any = None
    ) -> None:
        super().__init__(code, message, {"retry_after": retry_after} if details is None else details)
        self.retry_after = retry_after


class ApiError(Exception):
    """The HTTP edge's own error (authentication, scopes, malformed requests); services raise DomainError."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message or MESSAGES.get(code, code)
        self.details = details
        self.headers = headers


def error_body(code: str, message: str | None = None, details: Any = None) -> dict[str, Any]:
    """The JSON body of an error."""
    return {"error": {"code": code, "message": message or MESSAGES.get(code, code), "details": details}}


def error_response(
    status: int, code: str, message: str | None = None, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSONResponse carrying the error shape."""
    return JSONResponse(jsonable_encoder(error_body(code, message, details)), status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors():
        details.append(
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": err.get("msg", ""),
                "type": err.get("type", ""),
            }
        )
    return details


# Set by the web layer: renders the site's error page for (request, status, message).
HtmlErrorPage = Callable[[Request, int, str], Response]


def is_page_request(request: Request) -> bool:
    """Whether the request is for a page (HTML errors) rather than the API (JSON errors)."""
    prefixes: tuple[str, ...] = getattr(request.app.state, "page_prefixes", ())
    path = request.url.path
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def error_answer(
    request: Request,
    status: int,
    code: str,
    message: str | None = None,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The one place an error becomes a response: the HTML error page for pages, else the JSON shape."""
    page: HtmlErrorPage | None = getattr(request.app.state, "html_error_page", None)
    if page is not None and is_page_request(request):
        response = page(request, status, message or MESSAGES.get(code, code))
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response
    return error_response(status, code, message, details, headers)


async def api_error_handler(request: Request, exc: Exception) -> Response:
    """An ApiError in the error shape (or the HTML error page)."""
    assert isinstance(exc, ApiError)
    return error_answer(request, exc.status, exc.code, exc.message, exc.details, exc.headers)


async def domain_error_handler(request: Request, exc: Exception) -> Response:
    """A DomainError with the status of its kind, in the error shape (or the HTML error page)."""
    assert isinstance(exc, DomainError)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return error_answer(request, exc.status, exc.code, exc.message, exc.details, headers)


async def http_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Starlette's HTTP errors (404, 405 ...) in the error shape."""
    assert isinstance(exc, StarletteHTTPException)
    code = STATUS_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) and exc.detail not in ("Not Found",) else None
    return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    """Register handlers so that no error escapes in another shape."""
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(DomainError, domain_error_handler)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        if any(d["type"] == "json_invalid" for d in details):
            return error_response(400, "malformed_json", details=details)
        return error_response(422, "validation_error", details=details)

    app.add_exception_handler(StarletteHTTPException, http_error_handler)

    @app.exception_handler(SQLAlchemyTimeoutError)
    async def _pool_exhausted(request: Request, _exc: Exception) -> JSONResponse:
        # No database connection came within the pool timeout: busy, not broken.
        log.warning("no database connection for %s %s within the pool timeout", request.method, request.url.path)
        return error_response(503, "overloaded", headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error")
