"""What every CLI module shares: settings, a migrated engine, and `fail`. Imports nothing else from the CLI."""

from __future__ import annotations

import typer
from sqlalchemy.engine import Engine

from govconnect.db import engine_from_settings, upgrade
from govconnect.settings import Settings, get_settings


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error to stderr and return the Exit to raise."""
    typer.secho(f"错误 / error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def load_settings() -> Settings:
    """The settings from the environment, or a CLI error saying what is wrong."""
    try:
        return get_settings()
    except Exception as exc:  # noqa: BLE001 - pydantic validation of the environment
        raise fail(f"invalid configuration: {exc}") from exc


def migrated_engine(settings: Settings) -> Engine:
    """Upgrade the schema (cheap when current) and return an engine."""
    try:
        upgrade(settings.effective_database_url)
    except Exception as exc:  # noqa: BLE001
        raise fail(f"database unavailable or migration failed: {type(exc).__name__}: {exc}") from exc
    return engine_from_settings(settings)
