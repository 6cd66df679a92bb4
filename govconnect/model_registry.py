"""Imports every module that defines tables, so metadata and migrations see them all."""

from __future__ import annotations


def import_all_models() -> None:
    """Import all table modules (later capabilities add theirs here)."""
    import contacts.models  # noqa: F401
    import govconnect.agencies.models  # noqa: F401
    import govconnect.agencies.sessions  # noqa: F401
    import govconnect.audiences.models  # noqa: F401
    import govconnect.audit.models  # noqa: F401
    import govconnect.calls.models  # noqa: F401
    import govconnect.citizens.models  # noqa: F401
    import govconnect.citizens.publishing_models  # noqa: F401
    import govconnect.governance.models  # noqa: F401
    import govconnect.message_templates.models  # noqa: F401
    import govconnect.notices.models  # noqa: F401
    import govconnect.notices.pipeline_models  # noqa: F401
    import govconnect.notices.reply_models  # noqa: F401
    import govconnect.reports.models  # noqa: F401
    import govconnect.suppression.models  # noqa: F401

    _ids_never_reused()


def _ids_never_reused() -> None:
    """SQLite reuses the newest deleted row's id unless a table says AUTOINCREMENT; every table does.

    (PostgreSQL's sequences never reuse ids. Migration 0015 rebuilt the tables that existed before.)
    """
    from sqlalchemy import Integer
    from sqlmodel import SQLModel

    for table in SQLModel.metadata.tables.values():
        keys = list(table.primary_key.columns)
        if len(keys) == 1 and isinstance(keys[0].type, Integer):
            table.dialect_options["sqlite"]["autoincrement"] = True
