"""Operations commands: `govconnect purge`, `govconnect backup create|restore`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from govconnect.cli.common import CliDatabase, database_command, fail, load_settings
from govconnect.operations.backup import IN_FLIGHT_CODE, BackupError, create_backup, restore_backup
from govconnect.operations.retention import purge_expired

backup_app = typer.Typer(
    help="Backup and restore (数据灾备): database + data dir, manifest, checksums.", no_args_is_help=True
)


@database_command(migrate=True)
def purge(
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, help="Rows per transaction")] = None,
    *,
    db: CliDatabase,
) -> None:
    """Delete deliveries, private notices and audit rows past their retention (RETENTION__* settings)."""
    retention = db.settings.retention
    if batch_size is not None:
        retention = retention.model_copy(update={"batch_size": batch_size})
    report = purge_expired(db.engine, retention)
    typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))


@backup_app.command("create")
def backup_create(directory: Annotated[Path, typer.Argument(help="An empty or new directory")]) -> None:
    """Back up the database (SQLite online backup / pg_dump -Fc) and the data dir, with checksums."""
    try:
        manifest = create_backup(load_settings(), directory)
    except BackupError as exc:
        raise fail(str(exc)) from exc
    size = sum(entry["size"] for entry in manifest["files"])
    typer.echo(f"backup written to {directory}: {len(manifest['files'])} files, {size} bytes, {manifest['seconds']} s")


@backup_app.command("restore")
def backup_restore(
    directory: Annotated[Path, typer.Argument(help="A directory written by `backup create`")],
    resend_in_flight: Annotated[
        bool,
        typer.Option("--resend-in-flight", help="Send deliveries that were pending at backup time (may repeat some)"),
    ] = False,
) -> None:
    """Restore into an empty database and data dir, then rebuild the search index."""
    try:
        result = restore_backup(load_settings(), directory, resend_in_flight=resend_in_flight)
    except BackupError as exc:
        raise fail(str(exc)) from exc
    typer.echo(
        f"restored {result.notices} notices in {result.seconds} s; {result.fenced_deliveries} deliveries in flight "
        f"at backup time marked unknown ({IN_FLIGHT_CODE}), {result.stopped_fanouts} fan-outs stopped, "
        f"{result.contacts_indexed} contacts indexed"
    )


def register(app: typer.Typer) -> None:
    """Add the operations commands to the `govconnect` CLI."""
    app.command("purge")(purge)
    app.add_typer(backup_app, name="backup")
