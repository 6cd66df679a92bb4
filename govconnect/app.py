"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from sqlalchemy.engine import Engine

from govconnect import __version__
from govconnect.api.admission import UNMETERED_PATHS, AdmissionControl, KnownTokens
from govconnect.api.deps import RateLimiter
from govconnect.api.openapi import install_openapi
from govconnect.api.routes import agencies, health, notices, receipts
from govconnect.api.routes import contacts as contacts_routes
from govconnect.api.strict_query import reject_unknown_query
from govconnect.audiences import api as audiences_api
from govconnect.audit import api as audit_api
from govconnect.calls import api as calls_api
from govconnect.citizens import api as subscribers_api
from govconnect.citizens.code_limits import CodeBudget
from govconnect.console.install import install_console
from govconnect.db import engine_from_settings
from govconnect.errors import install_error_handlers
from govconnect.governance import api as governance_api
from govconnect.logging import configure_logging
from govconnect.message_templates import api as templates_api
from govconnect.metrics import MetricsMiddleware
from govconnect.middleware import BodySizeLimitMiddleware, ControlCharacterGuard
from govconnect.notices.embedded import install as install_notice_pipeline
from govconnect.operations.embedded import install as install_operations
from govconnect.providers.sandbox import mount_provider_sandbox
from govconnect.reports import api as reports_api
from govconnect.settings import Settings, get_settings
from govconnect.suppression import api as suppression_api
from govconnect.web import status as status_page
from govconnect.web.api_docs import install_api_docs
from govconnect.web.install import install_web
from govconnect.web.page_security import SecurityHeadersMiddleware
from govconnect.worker import InProcessQueue, open_arq_queue

log = logging.getLogger("govconnect.app")

# Routes anyone may call without credentials; a test checks every other route authenticates.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/redoc", "/favicon.ico"})

ROUTERS = [health.router, agencies.router, notices.router]
ROUTERS.append(contacts_routes.router)
ROUTERS.extend([audiences_api.router, suppression_api.router, templates_api.router])
ROUTERS.append(reports_api.router)
ROUTERS.append(status_page.router)
ROUTERS.append(audit_api.router)
ROUTERS.append(governance_api.router)
ROUTERS.append(subscribers_api.router)
ROUTERS.append(calls_api.router)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app for these settings; `engine` may be injected (tests share one)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owns_engine = engine is None
        app.state.engine = engine or engine_from_settings(settings, pool_timeout=settings.api_pool_timeout_seconds)
        ctx: dict[str, Any] = {"settings": settings, "engine": app.state.engine}
        inproc: InProcessQueue | None = None
        if settings.redis_url:
            queue = await open_arq_queue(settings)
            app.state.redis = queue.redis
            app.state.queue = queue
        else:
            app.state.redis = None
            inproc = InProcessQueue(ctx)
            inproc.start()
            app.state.queue = inproc
        for hook in app.state.startup_hooks:
            await hook(app)
        try:
            yield
        finally:
            for hook in reversed(app.state.shutdown_hooks):
                await hook(app)
            if inproc is not None:
                await inproc.stop()
            if app.state.redis is not None:
                await app.state.redis.aclose()
            if owns_engine:
                app.state.engine.dispose()

    app = FastAPI(
        title="GovConnect",
        version=__version__,
        description="政务消息网关 / Government notification gateway",
        lifespan=lifespan,
        docs_url=None,  # served offline with CSP nonces by install_api_docs
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter(settings)
    app.state.code_budget = CodeBudget.from_settings(settings)
    app.state.startup_hooks = []
    app.state.startup_hooks.append(contacts_routes.warm_directory)
    app.state.shutdown_hooks = []
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        larger={audiences_api.UPLOAD_PATH: settings.max_upload_bytes},
    )
    app.add_middleware(MetricsMiddleware)
    for router in ROUTERS:
        # API routes answer an unknown query parameter with 422 instead of ignoring it (api/strict_query.py).
        strict = [Depends(reject_unknown_query)] if router.prefix.startswith("/api/") else None
        app.include_router(router, dependencies=strict)
    install_notice_pipeline(app)
    install_operations(app)
    mount_provider_sandbox(app, settings)  # only when SANDBOX__IN_PROCESS (serve --demo)
    install_web(app, settings)
    install_console(app)
    install_api_docs(app)
    install_openapi(app)  # after every route: keys, errors, files and 405 declared from the routes
    # Outside the session (which loads the staff user) and every route: overload is answered before any
    # database work (api/admission.py).
    app.state.known_tokens = KnownTokens()
    app.add_middleware(
        AdmissionControl,
        tokens=app.state.known_tokens,
        per_caller=settings.api_concurrency_per_caller,
        total=settings.api_concurrency_total,
        queue_seconds=settings.api_queue_seconds,
        # The in-process provider sandbox (demo, tests) stands for providers outside: not our load.
        unmetered=(*UNMETERED_PATHS, settings.sandbox.mount_path) if settings.sandbox.in_process else UNMETERED_PATHS,
    )
    # Outermost: provider callbacks skip the session, staff and routing layers (receipts.py).
    app.add_middleware(receipts.ProviderCallbacks, max_bytes=settings.max_body_bytes)
    app.add_middleware(ControlCharacterGuard)
    # Outside everything: every response, callbacks and errors included, gets the security headers.
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.public_base_url.startswith("https://"))
    return app
