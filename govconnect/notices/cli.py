"""`govconnect subscribers ...` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

subscribers_app = typer.Typer(help="Subscribers (订阅用户): import from CSV.", no_args_is_help=True)


@subscribers_app.command("import")
def subscribers_import(
    file: Annotated[Path, typer.Argument(help="CSV with columns phone, openid, name, categories, regions, channels")],
) -> None:
    """Create or update subscribers from a CSV file (categories/regions/channels separated by ';')."""
    from govconnect.citizens.importer import import_subscribers
    from govconnect.cli import _migrated_engine, _settings, fail
    from govconnect.db import session_scope

    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {file}: {exc}") from exc
    engine = _migrated_engine(_settings())
    with session_scope(engine) as session:
        report = import_subscribers(session, text)
    for error in report.errors[:50]:
        typer.secho(error, err=True, fg=typer.colors.YELLOW)
    typer.echo(
        f"created {report.created}, updated {report.updated}, skipped (unsubscribed) {report.skipped}, "
        f"errors {len(report.errors)}"
    )
    if report.errors and not (report.created or report.updated):
        raise typer.Exit(1)
