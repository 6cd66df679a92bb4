"""`serve --demo`: a demo agency, an operator and an API key (kept across restarts) to try the API at once."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import select

from govconnect.agencies.models import SCOPES, StaffUser
from govconnect.agencies.service import create_agency, create_staff, get_agency_by_code
from govconnect.db import session_scope
from govconnect.demo.credentials import DemoCredentials
from govconnect.demo.directory import seed_directory
from govconnect.demo.info import DemoInfo, print_demo_banner
from govconnect.demo.notices import seed_notice_demo
from govconnect.demo.publishing import seed_publishing_demo
from govconnect.settings import Settings

__all__ = ["DEMO_HOOKS", "DemoInfo", "prepare_demo", "print_demo_banner", "seed_demo"]

DEMO_AGENCY_CODE = "qz-demo"
DEMO_AGENCY_NAME = "衢州市人民政府办公室（演示）"
DEMO_OPERATOR = "demo"
DEMO_KEY_NAME = "demo"


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
    """Create (once) the demo agency and operator; reuse the credentials of the last start while they still work."""
    credentials = DemoCredentials(settings.data_dir)
    with session_scope(engine) as session:
        agency = get_agency_by_code(session, DEMO_AGENCY_CODE) or create_agency(
            session, DEMO_AGENCY_NAME, DEMO_AGENCY_CODE, "衢州市"
        )
        key = credentials.api_key(session, agency, list(SCOPES), name=DEMO_KEY_NAME)
        operator = session.exec(select(StaffUser).where(StaffUser.username == DEMO_OPERATOR)).first()
        if operator is None:
            password = credentials.new_password(DEMO_OPERATOR)
            create_staff(session, DEMO_OPERATOR, agency, "operator", password, "演示操作员")
        else:
            password = credentials.password(operator)
            session.add(operator)
        info = DemoInfo(DEMO_AGENCY_CODE, key, DEMO_OPERATOR, password, credentials=credentials)
    for hook in DEMO_HOOKS:
        hook(engine, settings, info)
    credentials.save()
    return info


def note_provider_sandbox(_engine: Engine, settings: Settings, info: DemoInfo) -> None:
    """Tell the newcomer where the in-process sandbox is."""
    if settings.sandbox.in_process:
        url = f"{settings.sandbox.callback_base_url}{settings.sandbox.mount_path}/_sandbox"
        info.notes.append(f"provider sandbox 渠道沙箱: {url}  (SMS inbox: {url}/sms/inbox?phone=...)")


# Each area's demo seeder, in order: (engine, settings, info) -> None. A new area adds its own here.
DEMO_HOOKS: tuple[Callable[[Engine, Settings, Any], None], ...] = (
    seed_notice_demo,
    seed_publishing_demo,
    seed_directory,
    note_provider_sandbox,
)
