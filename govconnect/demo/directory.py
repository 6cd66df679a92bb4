"""Demo data for the directory: a few thousand fictional contacts, indexed."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from contacts.demo_data import load_demo
from contacts.directory import directory_index
from contacts.service import rebuild_index
from govconnect.db import session_scope
from govconnect.demo.info import DemoInfo
from govconnect.settings import Settings

DEMO_CONTACTS = 3000


def seed_directory(engine: Engine, settings: Settings, info: DemoInfo) -> None:
    """Demo hook: a few thousand fictional contacts, indexed, unless the directory has data already."""
    with session_scope(engine) as session:
        added = load_demo(session, DEMO_CONTACTS)
        ix = directory_index(settings.data_dir)
        if added or ix.doc_count() == 0:
            rebuild_index(session, ix)
    info.notes.append("directory 通讯录: try /api/v1/contacts/search?q=zw (3000 fictional contacts)")
