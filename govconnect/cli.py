"""The `govconnect` command line."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Annotated

import typer

from govconnect.agencies import (
    DomainError,
    create_agency,
    create_api_key,
    create_staff,
    list_agencies,
    list_api_keys,
    require_agency,
    revoke_api_key,
)
from govconnect.citizens.cli import categories_app  # also adds purge/export to `subscribers`
from govconnect.db import engine_from_settings, session_scope, upgrade
from govconnect.directory_cli import register as register_directory_commands
from govconnect.models import ROLES, SCOPES
from govconnect.notices.cli import subscribers_app
from govconnect.operations.cli import register as register_operations_commands
from govconnect.process import tune_gc_after_startup
from govconnect.sandbox_cli import sandbox_command
from govconnect.settings import Settings, get_settings

app = typer.Typer(
    help="GovConnect 政务消息网关: government notification gateway (SMS, voice, WeChat, WeCom, Weibo).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
agency_app = typer.Typer(help="Agencies (机构): create and list.", no_args_is_help=True)
key_app = typer.Typer(help="API keys: create (printed once), list (prefix only), revoke.", no_args_is_help=True)
staff_app = typer.Typer(help="Staff accounts for the mobile site.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(agency_app, name="agency")
app.add_typer(key_app, name="key")
app.add_typer(staff_app, name="staff")
app.add_typer(subscribers_app, name="subscribers")
app.add_typer(categories_app, name="categories")
register_directory_commands(app)
register_operations_commands(app)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error to stderr and return the Exit to raise."""
    typer.secho(f"错误 / error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def _settings() -> Settings:
    try:
        return get_settings()
    except Exception as exc:  # noqa: BLE001 - pydantic validation of the environment
        raise fail(f"invalid configuration: {exc}") from exc


def _migrated_engine(settings: Settings):  # type: ignore[no-untyped-def]
    """Upgrade the schema (cheap when current) and return an engine."""
    try:
        upgrade(settings.effective_database_url)
    except Exception as exc:  # noqa: BLE001
        raise fail(f"database unavailable or migration failed: {type(exc).__name__}: {exc}") from exc
    return engine_from_settings(settings)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Apply database migrations (Alembic) up to REVISION."""
    settings = _settings()
    try:
        upgrade(settings.effective_database_url, revision)
    except Exception as exc:  # noqa: BLE001
        raise fail(f"migration failed: {type(exc).__name__}: {exc}") from exc
    typer.echo(f"database at {revision}")


@agency_app.command("create")
def agency_create(
    name: Annotated[str, typer.Argument(help="Full name, e.g. 衢州市应急管理局")],
    code: Annotated[str, typer.Option("--code", help="Short unique code, e.g. qz-yjj")],
    region: Annotated[str, typer.Option("--region", help="Region, e.g. 衢州市 or 江山市")] = "",
) -> None:
    """Create an agency."""
    engine = _migrated_engine(_settings())
    try:
        with session_scope(engine) as session:
            agency = create_agency(session, name, code, region)
            typer.echo(f"created agency {agency.code} ({agency.name}, {agency.region or '-'})")
    except DomainError as exc:
        raise fail(exc.message) from exc


@agency_app.command("list")
def agency_list() -> None:
    """List agencies."""
    engine = _migrated_engine(_settings())
    with session_scope(engine) as session:
        for agency in list_agencies(session):
            typer.echo(f"{agency.code}\t{agency.name}\t{agency.region}")


@key_app.command("create")
def key_create(
    agency_code: Annotated[str, typer.Argument(help="The agency's code")],
    scopes: Annotated[
        list[str], typer.Option("--scopes", help=f"Scopes, comma-separated or repeated: {', '.join(SCOPES)}")
    ],
    name: Annotated[str, typer.Option("--name", help="A label for the key")] = "",
) -> None:
    """Create an API key; it is printed once and only its hash is stored."""
    engine = _migrated_engine(_settings())
    try:
        with session_scope(engine) as session:
            agency = require_agency(session, agency_code)
            issued = create_api_key(session, agency, scopes, name=name)
            typer.echo(issued.key)
            typer.echo(
                f"(prefix {issued.record.prefix}, scopes {','.join(issued.record.scopes)}; "
                "store it now: it cannot be shown again)",
                err=True,
            )
    except DomainError as exc:
        raise fail(exc.message) from exc


@key_app.command("list")
def key_list(agency_code: Annotated[str, typer.Argument(help="The agency's code")]) -> None:
    """List an agency's keys by prefix."""
    engine = _migrated_engine(_settings())
    try:
        with session_scope(engine) as session:
            agency = require_agency(session, agency_code)
            for key in list_api_keys(session, agency):
                state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
                typer.echo(f"{key.prefix}\t{','.join(key.scopes)}\t{key.name or '-'}\t{state}")
    except DomainError as exc:
        raise fail(exc.message) from exc


@key_app.command("revoke")
def key_revoke(prefix: Annotated[str, typer.Argument(help="The key's prefix as shown by `key list`")]) -> None:
    """Revoke a key; it stops working at once."""
    engine = _migrated_engine(_settings())
    try:
        with session_scope(engine) as session:
            key = revoke_api_key(session, prefix)
            typer.echo(f"revoked {key.prefix}")
    except DomainError as exc:
        raise fail(exc.message) from exc


@staff_app.command("create")
def staff_create(
    username: Annotated[str, typer.Argument(help="Login name")],
    agency: Annotated[str, typer.Option("--agency", help="The agency's code")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}")] = "staff",
    display_name: Annotated[str, typer.Option("--name", help="Display name")] = "",
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            help="Password (default: read GOVCONNECT_STAFF_PASSWORD, else prompt)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create a staff account (argon2-hashed password)."""
    if role not in ROLES:
        raise fail(f"role must be one of {', '.join(ROLES)}")
    password = password or os.environ.get("GOVCONNECT_STAFF_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            raise fail("no password: pass --password or set GOVCONNECT_STAFF_PASSWORD")
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    engine = _migrated_engine(_settings())
    try:
        with session_scope(engine) as session:
            user = create_staff(session, username, require_agency(session, agency), role, password, display_name)
            typer.echo(f"created {user.role} {user.username}")
    except DomainError as exc:
        raise fail(exc.message) from exc


@app.command("config")
def config_show(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Print the effective settings with secrets masked."""
    values = _settings().masked()
    if as_json:
        typer.echo(json.dumps(values, ensure_ascii=False, indent=2, default=str))
        return
    width = max(len(k) for k in values)
    for key, value in values.items():
        typer.echo(f"GOVCONNECT_{key.ljust(width)}  {value}")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    demo: Annotated[bool, typer.Option("--demo", help="Create demo data and print a demo API key")] = False,
) -> None:
    """Run the gateway (API, pages, and the in-process worker when REDIS_URL is unset)."""
    import uvicorn

    from govconnect.app import create_app
    from govconnect.demo import prepare_demo
    from govconnect.provider_sandbox import use_demo_sandbox

    settings = _settings()
    if demo:
        settings = settings.model_copy(update={"demo": True})
        settings = prepare_demo(settings)
        if "public_base_url" not in settings.model_fields_set:
            # Links in demo messages and feeds point at this server, not the default port.
            shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            settings = settings.model_copy(update={"public_base_url": f"http://{shown}:{port}"})
        settings = use_demo_sandbox(settings, host, port)  # channels talk to the in-process provider sandbox
    elif settings.secret_is_default():
        raise fail("GOVCONNECT_SECRET_KEY is not set; set it (or use --demo to try GovConnect)")
    if settings.is_sqlite or demo:
        _migrated_engine(settings).dispose()
    if demo:
        from govconnect.demo import print_demo_banner, seed_demo

        engine = engine_from_settings(settings)
        info = seed_demo(engine, settings)
        engine.dispose()
        print_demo_banner(info, host, port)
    application = create_app(settings)
    application.state.startup_hooks.append(_tune_gc_hook)
    uvicorn.run(application, host=host, port=port, log_config=None, access_log=True)


async def _tune_gc_hook(*_args: object) -> None:
    tune_gc_after_startup()


@app.command("worker")
def worker(
    burst: Annotated[bool, typer.Option("--burst", help="Exit when the queue is empty")] = False,
) -> None:
    """Run an arq worker on Redis (needs GOVCONNECT_REDIS_URL)."""
    settings = _settings()
    if not settings.redis_url:
        raise fail(
            "GOVCONNECT_REDIS_URL is not set. In embedded mode `govconnect serve` runs the worker "
            "in-process; set a Redis URL to run separate workers."
        )
    from arq.worker import Worker

    from govconnect.logging import configure_logging
    from govconnect.worker import worker_settings

    configure_logging(settings.log_level)
    # uvloop where installed (uvicorn[standard] brings it), as `serve` runs on: arq takes the
    # current event loop, which would otherwise be asyncio's own, slower one.
    try:
        import uvloop
    except ImportError:
        pass
    else:
        asyncio.set_event_loop(uvloop.new_event_loop())
    options = worker_settings(settings)
    started = options["on_startup"]

    async def on_startup(ctx: dict[str, object]) -> None:
        await started(ctx)
        tune_gc_after_startup()

    options["on_startup"] = on_startup
    w = Worker(**options, burst=burst)
    w.run()


app.command("sandbox")(sandbox_command)


def main() -> None:
    """Entry point of the console script."""
    from govconnect.logging import install_log_masking

    install_log_masking()  # every command: no mobile or secret in a log line, whoever configures handlers
    app()
