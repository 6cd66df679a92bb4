"""`govconnect contacts|index|demo-data ...`: the directory's import and export, its index, and fictional data."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from contacts.demo_data import write_csv
from contacts.directory import directory_index
from contacts.importer import ImportFileError, count_rows, export_rows, import_file
from contacts.service import rebuild_index
from govconnect.cli.common import CliDatabase, database_command, fail
from govconnect.db import session_scope
from govconnect.escaping import spreadsheet_row

contacts_app = typer.Typer(help="Government directory (通讯录): import and export contacts.", no_args_is_help=True)
index_app = typer.Typer(help="The directory search index.", no_args_is_help=True)
demo_data_app = typer.Typer(help="Generate fictional data for demos and benchmarks.", no_args_is_help=True)
PROGRESS_FROM_ROWS = 500


def register(app: typer.Typer) -> None:
    """Attach the directory commands to the main CLI."""
    app.add_typer(contacts_app, name="contacts")
    app.add_typer(index_app, name="index")
    app.add_typer(demo_data_app, name="demo-data")


@contacts_app.command("import")
@database_command(migrate=True)
def contacts_import(
    file: Annotated[Path, typer.Argument(help="CSV (UTF-8 / GB18030) or XLSX file")], *, db: CliDatabase
) -> None:
    """Import contacts; bad rows are reported with their line number, the rest are kept (exit 1 if any failed)."""
    if not file.is_file():
        raise fail(f"文件不存在 / no such file: {file}")
    settings, engine = db.settings, db.engine
    started = time.monotonic()
    try:
        rows = count_rows(file)
        ix = directory_index(settings.data_dir)
        with session_scope(engine) as session:
            if rows >= PROGRESS_FROM_ROWS and sys.stderr.isatty():
                with typer.progressbar(length=rows, label="导入 / importing", file=sys.stderr) as bar:
                    report = import_file(session, ix, file, progress=bar.update, checked=True)
            else:
                report = import_file(session, ix, file, checked=True)
    except ImportFileError as exc:
        raise fail(str(exc)) from exc
    for line, reason in report.failed:
        typer.secho(f"第 {line} 行 / line {line}: {reason}", err=True, fg=typer.colors.RED)
    typer.echo(
        f"导入完成 / imported: {report.created} created 新增, {report.updated} updated 更新, "
        f"{len(report.failed)} failed 失败, {report.total} rows 行 in {time.monotonic() - started:.1f}s"
    )
    if report.failed:
        raise typer.Exit(1)


@contacts_app.command("export")
@database_command()
def contacts_export(
    out: Annotated[Path | None, typer.Option("--out", help="File to write (default: standard output)")] = None,
    chinese: Annotated[bool, typer.Option("--chinese", help="Chinese header names (姓名,部门,...)")] = False,
    *,
    db: CliDatabase,
) -> None:
    """Export all contacts as CSV (UTF-8 with BOM when written to a file); re-importable."""
    engine = db.engine
    with session_scope(engine) as session:
        if out is None:
            writer = csv.writer(sys.stdout)
            for row in export_rows(session, chinese):
                writer.writerow(spreadsheet_row(row))
            return
        with out.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            count = -1
            for row in export_rows(session, chinese):
                writer.writerow(spreadsheet_row(row))
                count += 1
    typer.echo(f"exported {count} contacts to {out}", err=True)


@index_app.command("rebuild")
@database_command(migrate=True)
def index_rebuild(*, db: CliDatabase) -> None:
    """Rebuild the directory search index from the database (searches keep working meanwhile)."""
    settings, engine = db.settings, db.engine
    started = time.monotonic()
    with session_scope(engine) as session:
        count = rebuild_index(session, directory_index(settings.data_dir))
    typer.echo(f"indexed {count} contacts in {time.monotonic() - started:.1f}s")


@demo_data_app.command("contacts")
def demo_contacts(
    out: Annotated[Path, typer.Option("--out", help="CSV file to write")],
    count: Annotated[int, typer.Option("--count", min=1, max=2_000_000, help="How many contacts")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same file)")] = 20261125,
) -> None:
    """Write a fictional directory (real surname frequencies, no real persons) for demos and benchmarks."""
    written = write_csv(out, count, seed)
    typer.echo(f"wrote {written} fictional contacts to {out}")
