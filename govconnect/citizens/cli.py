"""`govconnect subscribers ...` and `govconnect categories ...`: subscriber housekeeping and admin-managed lists."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import col, select

from govconnect.citizens.publishing_models import PublicRegion
from govconnect.citizens.subscriptions import SubscriptionError, ensure_defaults, masked_rows, purge_inactive
from govconnect.db import session_scope
from govconnect.escaping import spreadsheet_record
from govconnect.notices.cli import subscribers_app  # the pipeline's `subscribers` group: import lives there
from govconnect.notices.models import Category

categories_app = typer.Typer(help="Notice categories and regions citizens can follow.", no_args_is_help=True)

EXPORT_FIELDS = ["id", "phone", "wechat_openid", "status", "channels", "categories", "regions", "source", "created_at"]


def _engine():  # type: ignore[no-untyped-def]
    from govconnect.cli import _migrated_engine, _settings

    return _migrated_engine(_settings())


def _fail(message: str) -> typer.Exit:
    from govconnect.cli import fail

    return fail(message)


@subscribers_app.command("purge")
def purge(
    inactive_days: Annotated[int, typer.Option("--inactive-days", help="Remove subscribers who left over N days ago")],
) -> None:
    """Delete subscribers who unsubscribed more than N days ago, and spent verification codes."""
    try:
        from govconnect.cli import _settings

        secret = _settings().secret_key.get_secret_value()
        with session_scope(_engine()) as session:
            subscribers, codes = purge_inactive(session, inactive_days, secret=secret)
    except SubscriptionError as exc:
        raise _fail(exc.message) from exc
    typer.echo(f"purged {subscribers} subscribers, {codes} verification codes")


@subscribers_app.command("export")
def export(
    out: Annotated[Path | None, typer.Option("--out", help="CSV file (default: standard output)")] = None,
) -> None:
    """Export subscribers as CSV with numbers and openids masked."""
    with session_scope(_engine()) as session:
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
def categories_list() -> None:
    """List categories and regions (seeding the defaults on first use)."""
    with session_scope(_engine()) as session:
        ensure_defaults(session)
        for c in session.exec(select(Category).order_by(col(Category.sort_order))).all():
            typer.echo(f"category\t{c.code}\t{c.name}\t{'active' if c.active else 'disabled'}")
        for r in session.exec(select(PublicRegion).order_by(col(PublicRegion.sort_order))).all():
            typer.echo(f"region\t{r.name}\t{'active' if r.active else 'disabled'}")


@categories_app.command("add")
def categories_add(
    code: Annotated[str, typer.Argument(help="Short code, e.g. weather")],
    name: Annotated[str, typer.Argument(help="Chinese name, e.g. 气象服务")],
) -> None:
    """Add (or re-enable and rename) a category."""
    code = code.strip().lower()
    if not code or len(code) > 64 or not name.strip():
        raise _fail("code and name are required (code at most 64 characters)")
    with session_scope(_engine()) as session:
        ensure_defaults(session)
        category = session.exec(select(Category).where(Category.code == code)).first()
        if category is None:
            count = len(session.exec(select(Category)).all())
            category = Category(code=code, name=name.strip(), sort_order=count)
        category.name, category.active = name.strip(), True
        session.add(category)
    typer.echo(f"category {code} ({name.strip()}) active")


@categories_app.command("disable")
def categories_disable(code: Annotated[str, typer.Argument(help="The category's code")]) -> None:
    """Stop offering a category (existing notices keep it)."""
    with session_scope(_engine()) as session:
        category = session.exec(select(Category).where(Category.code == code.strip().lower())).first()
        if category is None:
            raise _fail(f"no category {code!r}")
        category.active = False
        session.add(category)
    typer.echo(f"category {code} disabled")


@categories_app.command("add-region")
def regions_add(name: Annotated[str, typer.Argument(help="Region name, e.g. 智造新城")]) -> None:
    """Add (or re-enable) a region citizens can follow."""
    name = name.strip()
    if not name or len(name) > 64:
        raise _fail("region name is required (at most 64 characters)")
    with session_scope(_engine()) as session:
        ensure_defaults(session)
        region = session.exec(select(PublicRegion).where(PublicRegion.name == name)).first()
        if region is None:
            region = PublicRegion(name=name, sort_order=len(session.exec(select(PublicRegion)).all()))
        region.active = True
        session.add(region)
    typer.echo(f"region {name} active")
