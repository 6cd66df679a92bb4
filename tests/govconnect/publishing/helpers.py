"""Helpers for publishing tests: notices and a running app client."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.clock import utcnow
from govconnect.notices.models import Notice


def make_notice(session: Session, agency: Agency, **fields: Any) -> Notice:
    """A public notice flagged for site, tv and weibo unless overridden."""
    assert agency.id is not None
    values: dict[str, Any] = {
        "agency_id": agency.id,
        "title": "衢州市气象台发布暴雨橙色预警",
        "body": "预计未来6小时内柯城区、衢江区将出现50毫米以上降水，请市民减少外出。",
        "category": "yjyj",
        "regions": [],
        "channels": ["site", "tv", "weibo"],
        "public": True,
        "status": "completed",
    }
    values.update(fields)
    if "created_at" not in fields:
        values["created_at"] = utcnow() - timedelta(seconds=1)
    notice = Notice(**values)
    session.add(notice)
    session.commit()
    return notice


def csrf_from(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)
