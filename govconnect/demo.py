"""`serve --demo`: a demo agency, an operator and a fresh API key, so a newcomer can try the API at once."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

import typer
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import select

from govconnect.agencies import create_agency, create_api_key, create_staff, get_agency_by_code
from govconnect.db import session_scope
from govconnect.models import SCOPES, ApiKey, StaffUser, utcnow
from govconnect.security import hash_password
from govconnect.settings import Settings

DEMO_AGENCY_CODE = "qz-demo"
DEMO_AGENCY_NAME = "衢州市人民政府办公室（演示）"
DEMO_OPERATOR = "demo"
DEMO_KEY_NAME = "demo"


@dataclass
class DemoInfo:
    """What the banner prints."""

    agency_code: str
    api_key: str
    operator: str
    operator_password: str
    notes: list[str] = field(default_factory=list)


def prepare_demo(settings: Settings) -> Settings:
    """Demo settings: a random secret kept in DATA_DIR when none was configured."""
    if not settings.secret_is_default():
        return settings
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = settings.data_dir / "demo-secret-key"
    if not path.exists():
        # Created 0600 in one step: never readable by others, not even for a moment.
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return settings.model_copy(update={"secret_key": SecretStr(path.read_text().strip())})


def seed_demo(engine: Engine, settings: Settings) -> DemoInfo:
    """Create (once) the demo agency and operator, and issue a fresh demo key, revoking older ones."""
    with session_scope(engine) as session:
        agency = get_agency_by_code(session, DEMO_AGENCY_CODE) or create_agency(
            session, DEMO_AGENCY_NAME, DEMO_AGENCY_CODE, "衢州市"
        )
        for old in session.exec(
            select(ApiKey).where(ApiKey.agency_id == agency.id, ApiKey.name == DEMO_KEY_NAME)
        ).all():
            if old.revoked_at is None:
                old.revoked_at = utcnow()
                session.add(old)
        issued = create_api_key(session, agency, list(SCOPES), name=DEMO_KEY_NAME)
        # A fresh operator password every start, printed in the banner like the key.
        password = secrets.token_urlsafe(9)
        operator = session.exec(select(StaffUser).where(StaffUser.username == DEMO_OPERATOR)).first()
        if operator is None:
            create_staff(session, DEMO_OPERATOR, agency, "operator", password, "演示操作员")
        else:
            operator.password_hash = hash_password(password)
            session.add(operator)
        info = DemoInfo(DEMO_AGENCY_CODE, issued.key, DEMO_OPERATOR, password)
    for hook in DEMO_HOOKS:
        hook(engine, settings, info)
    return info


# Later capabilities append seeders here: (engine, settings, info) -> None.
DEMO_HOOKS: list = []  # type: ignore[type-arg]


def _register_notice_demo() -> None:
    from govconnect.notices.demo import seed_notice_demo

    DEMO_HOOKS.append(seed_notice_demo)


_register_notice_demo()


def print_demo_banner(info: DemoInfo, host: str, port: int) -> None:
    """Tell the newcomer how to try the API."""
    base = f"http://{host}:{port}"
    lines = [
        "",
        "GovConnect demo 演示模式",
        f"  agency 机构:        {info.agency_code}",
        f"  API key 密钥:       {info.api_key}",
        f"  operator 操作员:    {info.operator} / password 密码: {info.operator_password}",
        f"  try:  curl -H 'Authorization: Bearer {info.api_key}' {base}/api/v1/agencies/me",
        f"  docs: {base}/docs",
        *[f"  {note}" for note in info.notes],
        "",
    ]
    typer.echo("\n".join(lines))


from govconnect.web.demo import seed_publishing_demo  # noqa: E402 - registers after DEMO_HOOKS exists

DEMO_HOOKS.append(seed_publishing_demo)
