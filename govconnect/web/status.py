"""`/status` for operators: provider health and circuits, queue depth and age, Weibo and feed freshness.

Server-rendered with no script (it refreshes itself with a meta tag), readable by a signed-in
operator or admin, or with an admin API key (`?format=json` for machines).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.templating import Jinja2Templates

from govconnect.api.deps import KEY_OPTIONAL, SessionDep, get_optional_principal, takes_key
from govconnect.api.openapi import media_responses
from govconnect.clock import utcnow
from govconnect.errors import Forbidden
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import Delivery
from govconnect.notices.providers import channel_providers
from govconnect.operations.health import ProviderHealth, get_health, health_for
from govconnect.web.rendering import localtime
from govconnect.web.session import StaffLoginRequired, current_staff

router = APIRouter(tags=["operations"])
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.filters["localtime"] = localtime
D = Delivery.__table__  # type: ignore[attr-defined]
N = Notice.__table__  # type: ignore[attr-defined]
OPERATOR_ROLES = ("operator", "admin")


@takes_key(KEY_OPTIONAL, scope="admin")
def require_operator_view(request: Request, session: SessionDep) -> str:
    """An admin API key, or a signed-in operator/admin; anonymous browsers are sent to sign in."""
    principal = get_optional_principal(request, session)
    if principal is not None:
        if not principal.has("admin"):
            raise Forbidden("forbidden", details={"required_scope": "admin"})
        return f"key:{principal.key.prefix}"
    staff = current_staff(request)
    if staff is None:
        raise StaffLoginRequired(request.url.path)
    if staff.role not in OPERATOR_ROLES:
        raise Forbidden("forbidden", "需要操作员权限 / operator role required")
    return f"staff:{staff.username}"


def app_health(request: Request) -> ProviderHealth:
    """The provider health this app's workers write (the in-process worker's, or Redis)."""
    app = request.app
    queue_ctx = getattr(app.state.queue, "ctx", None)
    if queue_ctx is not None:
        return get_health(queue_ctx)
    health = getattr(app.state, "provider_health", None)
    if health is None:
        health = app.state.provider_health = health_for(app.state.settings, app.state.redis)
    return health


def _age(moment: datetime | None, now: datetime) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round((now - moment).total_seconds(), 1)


def pipeline_state(engine: Engine) -> dict[str, Any]:
    """Pending deliveries (through the pending partial index), the last Weibo post, the newest feed item."""
    now = utcnow()
    with engine.connect() as conn:
        row: Any = conn.execute(
            select(
                func.count(),
                func.min(D.c.created_at),
                func.count().filter(D.c.next_attempt_at <= now),
            ).where(D.c.next_attempt_at.is_not(None))
        ).one()
        pending, oldest, due = row
        last_weibo = conn.execute(
            select(func.max(D.c.sent_at)).where(
                D.c.recipient == "public", D.c.channel == "weibo", D.c.status.in_(("sent", "delivered"))
            )
        ).scalar()
        newest_public = conn.execute(
            select(func.max(N.c.created_at)).where(N.c.public.is_(True), N.c.status != "cancelled")
        ).scalar()
    return {
        "pending_deliveries": int(pending),
        "due_deliveries": int(due or 0),
        "oldest_pending_created_at": oldest,
        "oldest_pending_age_seconds": _age(oldest, now),
        "last_weibo_post_at": last_weibo,
        "last_weibo_post_age_seconds": _age(last_weibo, now),
        "newest_feed_item_at": newest_public,
        "newest_feed_item_age_seconds": _age(newest_public, now),
    }


async def queue_depth(request: Request) -> int | None:
    """Jobs waiting in arq's queue (Redis) or the in-process queue, deferred ones included."""
    app = request.app
    if app.state.redis is not None:
        return int(await app.state.redis.zcard(app.state.settings.queue_name))
    depth = getattr(app.state.queue, "depth", None)
    return int(depth()) if depth is not None else None


async def collect_status(request: Request) -> dict[str, Any]:
    """Everything the status page shows."""
    settings = request.app.state.settings
    providers = sorted({p for names in channel_providers(settings).values() for p in names})
    state = await run_in_threadpool(pipeline_state, request.app.state.engine)
    monitoring = settings.monitoring
    warnings = []
    if (state["oldest_pending_age_seconds"] or 0) > monitoring.queue_age_warning_seconds:
        warnings.append("queue_age")
    if state["newest_feed_item_age_seconds"] is not None and (
        state["newest_feed_item_age_seconds"] > monitoring.feed_stale_seconds
    ):
        warnings.append("feed_stale")
    snapshot = await app_health(request).snapshot(providers)
    warnings.extend(f"circuit_open:{p}" for p, s in snapshot.items() if s["circuit"] == "open")
    return {
        "generated_at": utcnow(),
        "providers": snapshot,
        "rates_per_second": dict(settings.notices.rate_per_second),
        "queue_jobs": await queue_depth(request),
        **state,
        "warnings": warnings,
    }


@router.get(
    "/status",
    response_model=None,
    responses={**media_responses("html"), 303: {"description": "未登录的浏览器转到登录页 / Browsers sign in first"}},
    summary="Operations status (operators and admin keys)",
)
async def status_page(
    request: Request,
    viewer: Annotated[str, Depends(require_operator_view)],
    format: Literal["html", "json"] = "html",  # noqa: A002 - the query parameter's name
) -> Response:
    """Provider success rates, latency and circuits; queue depth and age; Weibo and feed freshness."""
    status = await collect_status(request)
    if format == "json":
        return JSONResponse(_jsonable(status), headers={"Cache-Control": "no-store"})
    response: HTMLResponse = TEMPLATES.TemplateResponse(request, "status.html", {"s": status, "viewer": viewer})
    response.headers["Cache-Control"] = "no-store"
    return response


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
