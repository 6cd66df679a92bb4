"""`govconnect serve|worker|config|db ...`: running the gateway and its workers, and their configuration."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from govconnect.cli.common import fail, load_settings, migrated_engine
from govconnect.db import engine_from_settings, upgrade
from govconnect.process import tune_gc_after_startup
from govconnect.settings import Settings

db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach serve, worker, config and the db group to the main CLI."""
    app.add_typer(db_app, name="db")
    app.command("config")(config_show)
    app.command("serve")(serve)
    app.command("worker")(worker)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Apply database migrations (Alembic) up to REVISION."""
    settings = load_settings()
    try:
        upgrade(settings.effective_database_url, revision)
    except Exception as exc:  # noqa: BLE001
        raise fail(f"migration failed: {type(exc).__name__}: {exc}") from exc
    typer.echo(f"database at {revision}")


def config_show(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Print the effective settings with secrets masked."""
    values = load_settings().masked()
    if as_json:
        typer.echo(json.dumps(values, ensure_ascii=False, indent=2, default=str))
        return
    width = max(len(k) for k in values)
    for key, value in values.items():
        typer.echo(f"GOVCONNECT_{key.ljust(width)}  {value}")


def serve(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    demo: Annotated[
        bool, typer.Option("--demo", help="Create demo data; print demo credentials (kept across restarts)")
    ] = False,
) -> None:
    """Run the gateway (API, pages, and the in-process worker when REDIS_URL is unset)."""
    import uvicorn

    from govconnect.app import create_app
    from govconnect.demo.seed import prepare_demo
    from govconnect.providers.sandbox import use_demo_sandbox

    settings = load_settings(demo=demo)
    if demo:
        settings = prepare_demo(settings)
        if "public_base_url" not in settings.model_fields_set:
            # Links in demo messages and feeds point at this server, not the default port.
            shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            settings = settings.model_copy(update={"public_base_url": f"http://{shown}:{port}"})
        settings = use_demo_sandbox(settings, host, port)  # channels talk to the in-process provider sandbox
    if settings.is_sqlite or demo:
        migrated_engine(settings).dispose()
    if demo:
        from govconnect.demo.seed import print_demo_banner, seed_demo

        engine = engine_from_settings(settings)
        info = seed_demo(engine, settings)
        engine.dispose()
        print_demo_banner(info, host, port)
    application = create_app(settings)
    application.state.startup_hooks.append(_tune_gc_hook)
    if settings.metrics_listen:
        start_metrics_listener(settings.metrics_listen)
    uvicorn.run(application, host=host, port=port, log_config=None, access_log=True, **proxy_options(settings))


def start_metrics_listener(address: str) -> None:
    """Serve /metrics without a token on a separate address (keep it on a private interface)."""
    from prometheus_client import start_http_server

    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise fail(f"GOVCONNECT_METRICS_LISTEN must be host:port, not {address!r}")
    start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1")


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy-header options: X-Forwarded-For is believed only from FORWARDED_ALLOW_IPS.

    uvicorn's own default trusts it from 127.0.0.1, which made every local client able to choose
    its address (and so its sign-in budget); with nothing configured we trust no proxy at all.
    """
    trusted = settings.forwarded_allow_ips.strip()
    if not trusted:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": trusted}


async def _tune_gc_hook(*_args: object) -> None:
    tune_gc_after_startup()


def worker(
    burst: Annotated[bool, typer.Option("--burst", help="Exit when the queue is empty")] = False,
) -> None:
    """Run an arq worker on Redis (needs GOVCONNECT_REDIS_URL)."""
    settings = load_settings()
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
