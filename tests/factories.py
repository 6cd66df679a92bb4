"""Factories for test data."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.agencies.service import IssuedKey, create_agency, create_api_key


def make_agency(
    session: Session, code: str | None = None, name: str = "衢州市应急管理局", region: str = "衢州市"
) -> Agency:
    """An agency with a unique code."""
    agency = create_agency(session, name, code or f"ag-{uuid.uuid4().hex[:8]}", region)
    session.commit()
    return agency


def make_key(session: Session, agency: Agency, scopes: Sequence[str] = ("notices:send",)) -> IssuedKey:
    """An API key for the agency."""
    issued = create_api_key(session, agency, list(scopes))
    session.commit()
    return issued


def make_categories(session: Session, codes: Sequence[str] = ("yjyj", "sbyl", "zwgk")) -> None:
    """Notice categories by code."""
    from govconnect.notices.models import Category

    for i, code in enumerate(codes):
        session.add(Category(code=code, name=code, sort_order=i))
    session.commit()


def make_subscriber(
    session: Session,
    phone: str | None,
    openid: str | None = None,
    categories: Sequence[str] = ("yjyj",),
    regions: Sequence[str] = (),
    channels: Sequence[str] = ("sms", "wechat"),
    name: str = "",
    status: str = "active",
) -> int:
    """A subscriber with categories and regions; returns the id."""
    from govconnect.citizens.models import Subscriber, SubscriberCategory, SubscriberRegion

    sub = Subscriber(phone=phone, wechat_openid=openid, channels=list(channels), name=name, status=status)
    session.add(sub)
    session.flush()
    assert sub.id is not None
    for category in categories:
        session.add(SubscriberCategory(subscriber_id=sub.id, category=category))
    for region in regions:
        session.add(SubscriberRegion(subscriber_id=sub.id, region=region))
    session.commit()
    return sub.id
