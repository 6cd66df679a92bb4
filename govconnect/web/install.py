"""Wires the publishing surfaces into the app: sessions, static files, pages, feeds, defaults."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError

from govconnect.citizens.code_delivery import close_code_client, send_code_sms
from govconnect.citizens.subscriptions import ensure_defaults
from govconnect.db import session_scope
from govconnect.jobs import load_job_modules
from govconnect.settings import Settings
from govconnect.web import (
    attendance_pages,
    feeds,
    site,
    staff_calls,
    staff_compose,
    staff_directory,
    subscribe_pages,
    tv,
)
from govconnect.web.anonymous_limits import AnonymousRateLimitMiddleware
from govconnect.web.rendering import error_page, public_page
from govconnect.web.session import install_login_redirect, install_sessions

log = logging.getLogger("govconnect.web")
STATIC_DIR = Path(__file__).parent / "static"
# Errors under these paths are answered with the HTML error page (govconnect.errors maps them).
PAGE_PREFIXES = ("/m", "/tv", "/console")
ERROR_HEADINGS = {403: "无权访问", 404: "页面不存在", 409: "操作与当前状态冲突", 422: "输入有误", 429: "操作过于频繁"}


def html_error_page(request: Request, status: int, message: str) -> Response:
    """The site's error page for a domain or HTTP-edge error on a page."""
    return error_page(request, status, ERROR_HEADINGS.get(status, "出错了"), message)


def install_web(app: FastAPI, settings: Settings) -> None:
    """Add the mobile site, TV page and feeds and the staff session to an app."""
    # Compose enqueues pipeline jobs; the embedded queue needs the registry complete (arq workers load it too).
    load_job_modules()
    app.state.page_prefixes = PAGE_PREFIXES
    app.state.html_error_page = html_error_page
    # Added before the sessions so it runs inside them and can tell signed-in staff apart.
    app.add_middleware(AnonymousRateLimitMiddleware, settings=settings)
    install_sessions(app, settings)
    install_login_redirect(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in (
        site.router,
        subscribe_pages.router,
        attendance_pages.router,
        staff_directory.router,
        staff_calls.router,
        staff_compose.router,
        feeds.router,
        tv.router,
    ):
        app.include_router(router)
    app.state.code_sender = send_code_sms
    app.state.shutdown_hooks.append(close_code_client)

    @app.get("/", include_in_schema=False)
    @public_page
    def root() -> RedirectResponse:
        """The site's front page."""
        return RedirectResponse("/m/", status_code=307)

    async def seed_defaults(app: FastAPI) -> None:
        try:
            with session_scope(app.state.engine) as session:
                ensure_defaults(session)
        except SQLAlchemyError as exc:
            # An unmigrated database must not stop the app (health checks say what is wrong).
            log.warning("could not seed categories and regions: %s", type(exc).__name__)

    # Tests build their own data (an automatic seed would collide with their fixtures).
    if not settings.test_mode:
        app.state.startup_hooks.append(seed_defaults)
