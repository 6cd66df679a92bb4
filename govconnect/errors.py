"""One JSON error shape for every failure: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
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


class ApiError(Exception):
    """An error the API answers with a given status and machine-readable code."""

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


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """An ApiError in the error shape."""
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def http_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Starlette's HTTP errors (404, 405 ...) in the error shape."""
    assert isinstance(exc, StarletteHTTPException)
    code = STATUS_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) and exc.detail not in ("Not Found",) else None
    return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    """Register handlers so that no error escapes in another shape."""
    app.add_exception_handler(ApiError, api_error_handler)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        if any(d["type"] == "json_invalid" for d in details):
            return error_response(400, "malformed_json", details=details)
        return error_response(422, "validation_error", details=details)

    app.add_exception_handler(StarletteHTTPException, http_error_handler)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error")
