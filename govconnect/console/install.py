"""Wires the console into the app: its static files and its rooms (dashboard, notices, compose, admin)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from govconnect.console import admin, approvals, compose, directory, library, notices, office, people, settings
from govconnect.console.pages import CONSOLE_DIR


def install_console(app: FastAPI) -> None:
    """Add the console's pages under /console/ and its assets under /console/static/."""
    app.mount("/console/static", StaticFiles(directory=CONSOLE_DIR / "static"), name="console-static")
    # library before admin: /console/templates/new is not a template id.
    for router in (
        library.router,
        approvals.router,
        notices.router,
        compose.router,
        admin.router,
        office.router,
        settings.router,
        people.router,
        directory.router,
    ):
        app.include_router(router)
