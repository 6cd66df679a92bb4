"""Imports every module that defines tables, so metadata and migrations see them all."""

from __future__ import annotations


def import_all_models() -> None:
    """Import all table modules (later capabilities add theirs here)."""
    import contacts.models  # noqa: F401
    import govconnect.agencies.models  # noqa: F401
    import govconnect.agencies.sessions  # noqa: F401
    import govconnect.audiences.models  # noqa: F401
    import govconnect.audit.models  # noqa: F401
    import govconnect.citizens.models  # noqa: F401
    import govconnect.citizens.publishing_models  # noqa: F401
    import govconnect.governance.models  # noqa: F401
    import govconnect.message_templates.models  # noqa: F401
    import govconnect.notices.models  # noqa: F401
    import govconnect.notices.pipeline_models  # noqa: F401
    import govconnect.reports.models  # noqa: F401
    import govconnect.suppression.models  # noqa: F401
