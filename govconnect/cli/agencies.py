"""`govconnect agency|key|staff ...`: agencies, their API keys and staff accounts."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from govconnect.agencies.models import ROLES, SCOPES
from govconnect.agencies.service import (
    create_agency,
    create_api_key,
    create_staff,
    list_agencies,
    list_api_keys,
    require_agency,
    revoke_api_key,
)
from govconnect.audit.record import Actor
from govconnect.cli.common import CliDatabase, database_command, fail
from govconnect.db import session_scope
from govconnect.governance.policy import get_policy, set_policy

agency_app = typer.Typer(help="Agencies (机构): create, list, sign-off policy.", no_args_is_help=True)
key_app = typer.Typer(help="API keys: create (printed once), list (prefix only), revoke.", no_args_is_help=True)
staff_app = typer.Typer(help="Staff accounts for the mobile site.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach the agency, key and staff commands to the main CLI."""
    app.add_typer(agency_app, name="agency")
    app.add_typer(key_app, name="key")
    app.add_typer(staff_app, name="staff")


@agency_app.command("create")
@database_command(migrate=True)
def agency_create(
    name: Annotated[str, typer.Argument(help="Full name, e.g. 衢州市应急管理局")],
    code: Annotated[str, typer.Option("--code", help="Short unique code, e.g. qz-yjj")],
    region: Annotated[str, typer.Option("--region", help="Region, e.g. 衢州市 or 江山市")] = "",
    *,
    db: CliDatabase,
) -> None:
    """Create an agency."""
    with session_scope(db.engine) as session:
        agency = create_agency(session, name, code, region)
        typer.echo(f"created agency {agency.code} ({agency.name}, {agency.region or '-'})")


@agency_app.command("list")
@database_command()
def agency_list(*, db: CliDatabase) -> None:
    """List agencies."""
    with session_scope(db.engine) as session:
        for agency in list_agencies(session):
            typer.echo(f"{agency.code}\t{agency.name}\t{agency.region}")


@agency_app.command("policy")
@database_command(migrate=True)
def agency_policy(
    code: Annotated[str, typer.Argument(help="The agency's code")],
    require_approval: Annotated[
        str | None,
        typer.Option(
            "--require-approval", help="Which notices need sign-off: none|public|large|all", show_default=False
        ),
    ] = None,
    large_audience: Annotated[
        int | None, typer.Option("--large-audience", help="With `large`: audiences above N people", show_default=False)
    ] = None,
    approvers: Annotated[
        int | None, typer.Option("--approvers", help="Approvers each notice needs", show_default=False)
    ] = None,
    *,
    db: CliDatabase,
) -> None:
    """Show or change an agency's sign-off (审核) policy."""
    values = {
        name: value
        for name, value in (
            ("require_approval", require_approval),
            ("large_audience", large_audience),
            ("approvers", approvers),
        )
        if value is not None
    }
    with session_scope(db.engine) as session:
        agency = require_agency(session, code)
        policy = (
            set_policy(session, agency.id or 0, Actor.cli(agency.id), **values)
            if values
            else get_policy(session, agency.id or 0)
        )
        typer.echo(
            f"{agency.code}: require_approval={policy.require_approval} large_audience={policy.large_audience}"
            f" approvers={policy.approvers} urgent_at_once={policy.urgent_at_once}"
        )


@key_app.command("create")
@database_command(migrate=True)
def key_create(
    agency_code: Annotated[str, typer.Argument(help="The agency's code")],
    scopes: Annotated[
        list[str], typer.Option("--scopes", help=f"Scopes, comma-separated or repeated: {', '.join(SCOPES)}")
    ],
    name: Annotated[str, typer.Option("--name", help="A label for the key")] = "",
    *,
    db: CliDatabase,
) -> None:
    """Create an API key; it is printed once and only its hash is stored."""
    with session_scope(db.engine) as session:
        agency = require_agency(session, agency_code)
        issued = create_api_key(session, agency, scopes, name=name)
        typer.echo(issued.key)
        typer.echo(
            f"(prefix {issued.record.prefix}, scopes {','.join(issued.record.scopes)}; "
            "store it now: it cannot be shown again)",
            err=True,
        )


@key_app.command("list")
@database_command()
def key_list(agency_code: Annotated[str, typer.Argument(help="The agency's code")], *, db: CliDatabase) -> None:
    """List an agency's keys by prefix."""
    with session_scope(db.engine) as session:
        agency = require_agency(session, agency_code)
        for key in list_api_keys(session, agency):
            state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            typer.echo(f"{key.prefix}\t{','.join(key.scopes)}\t{key.name or '-'}\t{state}")


@key_app.command("revoke")
@database_command(migrate=True)
def key_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix as shown by `key list`")], *, db: CliDatabase
) -> None:
    """Revoke a key; it stops working at once."""
    with session_scope(db.engine) as session:
        key = revoke_api_key(session, prefix)
        typer.echo(f"revoked {key.prefix}")


@staff_app.command("create")
@database_command(migrate=True)
def staff_create(
    username: Annotated[str, typer.Argument(help="Login name")],
    agency: Annotated[str, typer.Option("--agency", help="The agency's code")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}")] = "staff",
    display_name: Annotated[str, typer.Option("--name", help="Display name")] = "",
    phone: Annotated[
        str | None, typer.Option("--phone", help="Mobile number (approvers are told by SMS)", show_default=False)
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            help="Password (default: read GOVCONNECT_STAFF_PASSWORD, else prompt)",
            show_default=False,
        ),
    ] = None,
    *,
    db: CliDatabase,
) -> None:
    """Create a staff account (argon2-hashed password)."""
    if role not in ROLES:
        raise fail(f"role must be one of {', '.join(ROLES)}")
    password = password or os.environ.get("GOVCONNECT_STAFF_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            raise fail("no password: pass --password or set GOVCONNECT_STAFF_PASSWORD")
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with session_scope(db.engine) as session:
        user = create_staff(session, username, require_agency(session, agency), role, password, display_name, phone)
        typer.echo(f"created {user.role} {user.username}")
