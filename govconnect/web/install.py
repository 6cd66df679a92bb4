"""Wires the publishing surfaces into the app: sessions, static files, pages, feeds, defaults."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError

from govconnect.citizens import api as subscribers_api
from govconnect.citizens.code_delivery import close_code_client, send_code_sms
from govconnect.citizens.subscriptions import ensure_defaults
from govconnect.db import session_scope
from govconnect.jobs import load_job_modules
from govconnect.settings import Settings
from govconnect.web import feeds, site, staff_compose, staff_directory, subscribe_pages, tv
from govconnect.web.anonymous_limits import AnonymousRateLimitMiddleware
from govconnect.web.rendering import public_page
from govconnect.web.session import install_login_redirect, install_sessions

log = logging.getLogger("govconnect.web")
STATIC_DIR = Path(__file__).parent / "static"


def install_web(app: FastAPI, settings: Settings) -> None:
    """Add the mobile site, TV page and feeds, the subscriber API and the staff session to an app."""
    # Compose enqueues pipeline jobs; the embedded queue needs the registry complete (arq workers load it too).
    load_job_modules()
    # Added before the sessions so it runs inside them and can tell signed-in staff apart.
    app.add_middleware(AnonymousRateLimitMiddleware, settings=settings)
    install_sessions(app, settings)
    install_login_redirect(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in (
        site.router,
        subscribe_pages.router,
        staff_directory.router,
        staff_compose.router,
        feeds.router,
        tv.router,
        subscribers_api.router,
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
