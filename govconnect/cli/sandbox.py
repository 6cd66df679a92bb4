"""`govconnect sandbox`: run the provider sandbox alone and print how to point a gateway at it."""

from __future__ import annotations

from typing import Annotated

import typer

from govconnect.settings import get_settings


def register(app: typer.Typer) -> None:
    """Attach `sandbox` to the main CLI."""
    app.command("sandbox")(sandbox_command)


def sandbox_command(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8900,
    callback_base_url: Annotated[
        str, typer.Option("--callback-base-url", help="The gateway the sandbox pushes reports to")
    ] = "http://127.0.0.1:8000",
    report_delay: Annotated[float, typer.Option(help="Seconds before status reports are pushed")] = 1.0,
    cmpp_port: Annotated[int, typer.Option(help="CMPP ISMG simulator port (-1: none)")] = 7890,
) -> None:
    """Run the provider sandbox (Alibaba SMS/voice, WeChat, WeCom, Weibo) on HOST:PORT."""
    import uvicorn

    from channels.sandbox import SandboxState, create_sandbox_app
    from govconnect.providers.sandbox import gateway_env, sandbox_config

    if report_delay < 0 or not 0 < port < 65536 or not -1 <= cmpp_port < 65536:
        typer.secho("错误 / error: ports must be 1-65535 and report delay ≥ 0", err=True, fg=typer.colors.RED)
        raise typer.Exit(2)
    try:
        settings = get_settings()
    except Exception as exc:  # noqa: BLE001 - pydantic validation of the environment
        typer.secho(f"错误 / error: invalid configuration: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from exc
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
    settings = settings.model_copy(
        update={"sandbox": settings.sandbox.model_copy(update={"report_delay": report_delay})}
    )
    config = sandbox_config(settings, callback_base_url)
    config.cmpp_port = None if cmpp_port < 0 else cmpp_port
    state = SandboxState(config)
    typer.echo(f"provider sandbox on {url}  (control: {url}/_sandbox)")
    typer.echo("point a gateway at it with these settings (credentials: yours when set, else the sandbox's):")
    for key, value in gateway_env(url, config).items():
        typer.echo(f"  {key}={value}")
    from govconnect.process import tune_gc_after_startup

    application = create_sandbox_app(state=state)
    tune_gc_after_startup()
    uvicorn.run(application, host=host, port=port, log_config=None, access_log=False)
