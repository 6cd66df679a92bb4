"""`govconnect subscribers ...` and `govconnect categories ...`: subscribers, and the lists citizens can follow."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import col, select

from contacts.tabular import TabularError
from govconnect.citizens.importer import import_subscribers
from govconnect.citizens.publishing_models import PublicRegion
from govconnect.citizens.subscriptions import ensure_defaults, masked_rows, purge_inactive
from govconnect.cli.common import CliDatabase, database_command, fail
from govconnect.db import session_scope
from govconnect.escaping import spreadsheet_record
from govconnect.notices.models import Category

subscribers_app = typer.Typer(help="Subscribers (订阅用户): import, export (masked), purge.", no_args_is_help=True)
categories_app = typer.Typer(help="Notice categories and regions citizens can follow.", no_args_is_help=True)

EXPORT_FIELDS = ["id", "phone", "wechat_openid", "status", "channels", "categories", "regions", "source", "created_at"]


def register(app: typer.Typer) -> None:
    """Attach the subscribers and categories groups to the main CLI."""
    app.add_typer(subscribers_app, name="subscribers")
    app.add_typer(categories_app, name="categories")


@subscribers_app.command("import")
@database_command(migrate=True)
def subscribers_import(
    file: Annotated[
        Path, typer.Argument(help="CSV (UTF-8 / GB18030) or XLSX: phone, openid, name, categories, regions, channels")
    ],
    *,
    db: CliDatabase,
) -> None:
    """Create or update subscribers from a CSV or XLSX file (lists separated by ';'); exit 1 if any row was refused."""
    if not file.is_file():
        raise fail(f"文件不存在 / no such file: {file}")
    try:
        with session_scope(db.engine) as session:
            report = import_subscribers(session, file)
    except (TabularError, OSError) as exc:
        raise fail(str(exc)) from exc
    for error in report.errors[:50]:
        typer.secho(error, err=True, fg=typer.colors.YELLOW)
    typer.echo(
        f"created {report.created}, updated {report.updated}, skipped (unsubscribed) {report.skipped}, "
        f"errors {len(report.errors)}"
    )
    if report.errors:  # good rows are kept; the exit status says some were refused, as `contacts import` does
        raise typer.Exit(1)


@subscribers_app.command("purge")
@database_command(migrate=True)
def purge(
    inactive_days: Annotated[int, typer.Option("--inactive-days", help="Remove subscribers who left over N days ago")],
    *,
    db: CliDatabase,
) -> None:
    """Delete subscribers who unsubscribed more than N days ago, and spent verification codes."""
    secret = db.settings.secret_key.get_secret_value()
    with session_scope(db.engine) as session:
        subscribers, codes = purge_inactive(session, inactive_days, secret=secret)
    typer.echo(f"purged {subscribers} subscribers, {codes} verification codes")


@subscribers_app.command("export")
@database_command()
def export(
    out: Annotated[Path | None, typer.Option("--out", help="CSV file (default: standard output)")] = None,
    *,
    db: CliDatabase,
) -> None:
    """Export subscribers as CSV with numbers and openids masked."""
    with session_scope(db.engine) as session:
        rows = list(masked_rows(session))
    handle = out.open("w", newline="", encoding="utf-8") if out else sys.stdout
    try:
        writer = csv.DictWriter(handle, fieldnames=[*EXPORT_FIELDS, "unsubscribed_at"])
        writer.writeheader()
        writer.writerows(spreadsheet_record(row) for row in rows)
    finally:
        if out:
            handle.close()
    if out:
        typer.echo(f"exported {len(rows)} subscribers (masked) to {out}", err=True)


@categories_app.command("list")
@database_command(migrate=True)
def categories_list(*, db: CliDatabase) -> None:
    """List categories and regions (seeding the defaults on first use)."""
    with session_scope(db.engine) as session:
        ensure_defaults(session)
        for c in session.exec(select(Category).order_by(col(Category.sort_order))).all():
            typer.echo(f"category\t{c.code}\t{c.name}\t{'active' if c.active else 'disabled'}")
        for r in session.exec(select(PublicRegion).order_by(col(PublicRegion.sort_order))).all():
            typer.echo(f"region\t{r.name}\t{'active' if r.active else 'disabled'}")


@categories_app.command("add")
@database_command(migrate=True)
def categories_add(
    code: Annotated[str, typer.Argument(help="Short code, e.g. weather")],
    name: Annotated[str, typer.Argument(help="Chinese name, e.g. 气象服务")],
    *,
    db: CliDatabase,
) -> None:
    """Add (or re-enable and rename) a category."""
    code = code.strip().lower()
    if not code or len(code) > 64 or not name.strip():
        raise fail("code and name are required (code at most 64 characters)")
    with session_scope(db.engine) as session:
        ensure_defaults(session)
        category = session.exec(select(Category).where(Category.code == code)).first()
        if category is None:
            count = len(session.exec(select(Category)).all())
            category = Category(code=code, name=name.strip(), sort_order=count)
        category.name, category.active = name.strip(), True
        session.add(category)
    typer.echo(f"category {code} ({name.strip()}) active")


@categories_app.command("disable")
@database_command(migrate=True)
def categories_disable(code: Annotated[str, typer.Argument(help="The category's code")], *, db: CliDatabase) -> None:
    """Stop offering a category (existing notices keep it)."""
    with session_scope(db.engine) as session:
        category = session.exec(select(Category).where(Category.code == code.strip().lower())).first()
        if category is None:
            raise fail(f"no category {code!r}")
        category.active = False
        session.add(category)
    typer.echo(f"category {code} disabled")


@categories_app.command("add-region")
@database_command(migrate=True)
def regions_add(name: Annotated[str, typer.Argument(help="Region name, e.g. 智造新城")], *, db: CliDatabase) -> None:
    """Add (or re-enable) a region citizens can follow."""
    name = name.strip()
    if not name or len(name) > 64:
        raise fail("region name is required (at most 64 characters)")
    with session_scope(db.engine) as session:
        ensure_defaults(session)
        region = session.exec(select(PublicRegion).where(PublicRegion.name == name)).first()
        if region is None:
            region = PublicRegion(name=name, sort_order=len(session.exec(select(PublicRegion)).all()))
        region.active = True
        session.add(region)
    typer.echo(f"region {name} active")
