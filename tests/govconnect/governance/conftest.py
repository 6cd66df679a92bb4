"""Governance tests reuse the notice pipeline's fixtures (embedded app, scripted providers, agency, key)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.clock import utcnow
from govconnect.notices.models import Notice
from tests.govconnect.notices.conftest import (  # noqa: F401 - fixtures
    agency,
    app_client,
    auth,
    ctx,
    fake_providers,
    pipeline_settings,
)


def notice_in(session: Session, owner: Agency, status: str, channels: Sequence[str] = ("site",), **over: Any) -> Notice:
    """A notice row in the given status (as if it had got there through the gate)."""
    assert owner.id is not None
    notice = Notice(
        agency_id=owner.id,
        title="停水通知",
        body="明日 9:00–17:00 柯城区部分路段停水。",
        category="zwgk",
        channels=list(channels),
        public=bool(set(channels) & {"site", "tv", "weibo"}),
        status=status,
        created_by="key:drafter",
        created_at=utcnow() - timedelta(seconds=1),
        **over,
    )
    session.add(notice)
    session.commit()
    return notice
