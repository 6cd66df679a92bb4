"""What every CLI module shares: settings, the database, errors. Imports nothing else from the CLI."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from govconnect.db import current_revision, engine_from_settings, head_revision, upgrade
from govconnect.errors import DomainError
from govconnect.settings import Settings, get_settings

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error to stderr and return the Exit to raise."""
    typer.secho(f"错误 / error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def load_settings(*, demo: bool = False) -> Settings:
    """The settings from the environment, or a CLI error saying what is wrong (an unset secret included)."""
    try:
        return Settings(demo=True) if demo else get_settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise fail(f"invalid configuration: {problems}") from exc
    except Exception as exc:  # noqa: BLE001 - anything else reading the environment
        raise fail(f"invalid configuration: {exc}") from exc


def migrated_engine(settings: Settings) -> Engine:
    """Upgrade the schema (cheap when current) and return an engine."""
    try:
        upgrade(settings.effective_database_url)
    except Exception as exc:  # noqa: BLE001
        raise fail(f"database unavailable or migration failed: {type(exc).__name__}: {exc}") from exc
    return engine_from_settings(settings)


def current_engine(settings: Settings) -> Engine:
    """An engine on a database whose schema is current; a clear error (never a migration) otherwise."""
    engine = engine_from_settings(settings)
    try:
        at = current_revision(engine)
    except Exception as exc:  # noqa: BLE001 - unreachable server, bad URL
        engine.dispose()
        raise fail(f"database unavailable: {type(exc).__name__}: {exc}") from exc
    if at != head_revision():
        engine.dispose()
        state = "has no schema yet" if at is None else f"is at schema {at}"
        raise fail(f"数据库结构不是最新 / the database {state}: run `govconnect db upgrade` first")
    return engine


@dataclass(frozen=True)
class CliDatabase:
    """What a database command receives: the settings and an engine (disposed when the command ends)."""

    settings: Settings
    engine: Engine


def database_command(*, migrate: bool = False) -> Callable[[F], F]:
    """Give a CLI command `db: CliDatabase` and turn domain errors into a message and exit 1.

    Commands that change data upgrade the schema first (`migrate=True`), as `serve` does on SQLite;
    read-only commands never touch the schema and refuse a database that is not current.
    """

    def decorate(func: F) -> F:
        signature = inspect.signature(func, eval_str=True)
        shown = [param for name, param in signature.parameters.items() if name != "db"]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            settings = load_settings()
            engine = migrated_engine(settings) if migrate else current_engine(settings)
            try:
                return func(*args, db=CliDatabase(settings, engine), **kwargs)
            except DomainError as exc:
                raise fail(exc.message) from exc
            finally:
                engine.dispose()

        run.__signature__ = signature.replace(parameters=shown)  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return decorate
