"""Liveness and readiness (public by design) and metrics (bearer METRICS_TOKEN, or a separate listener)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from govconnect.api.openapi import METRICS_SCHEME, error_declaration, media_responses
from govconnect.db import ping
from govconnect.errors import ApiError
from govconnect.security import secrets_equal
from govconnect.settings import Settings

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Process is up")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Database and Redis reachable",
    responses={503: error_declaration("依赖服务不可用 / A dependency is unavailable (`checks` says which)")},
)
async def readyz(request: Request) -> JSONResponse:
    """Readiness: the database and, when configured, Redis answer."""
    checks: dict[str, Any] = {}
    ok = True
    try:
        await asyncio.wait_for(run_in_threadpool(ping, request.app.state.engine), timeout=5)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        ok = False
        checks["database"] = f"error: {type(exc).__name__}"
    redis = getattr(request.app.state, "redis", None)
    if redis is not None:
        try:
            await asyncio.wait_for(redis.ping(), timeout=3)
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            ok = False
            checks["redis"] = f"error: {type(exc).__name__}"
    else:
        checks["redis"] = "not configured (embedded worker)"
    if ok:
        return JSONResponse({"status": "ok", "checks": checks})
    failing = [name for name, value in checks.items() if str(value).startswith("error")]
    return JSONResponse(
        {
            "status": "unavailable",
            "checks": checks,
            "error": {
                "code": "not_ready",
                "message": "依赖服务不可用 / A dependency is unavailable",
                "details": {"failing": failing},
            },
        },
        status_code=503,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics (Authorization: Bearer METRICS_TOKEN)",
    response_class=Response,
    responses=media_responses("prometheus", with_json=False),
    openapi_extra={"security": [{METRICS_SCHEME: []}]},
)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition, for the bearer of GOVCONNECT_METRICS_TOKEN only."""
    settings: Settings = request.app.state.settings
    expected = settings.metrics_token.get_secret_value()
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not secrets_equal(expected, given.strip()):
        raise ApiError(
            401,
            "unauthorized",
            "需要指标令牌 / /metrics needs Authorization: Bearer <GOVCONNECT_METRICS_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
