"""Subscriber tables: the pipeline reads them for audiences, the subscription flows write them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from govconnect.clock import utcnow


class Subscriber(SQLModel, table=True):
    """A citizen reachable by mobile number and/or WeChat openid."""

    __tablename__ = "subscriber"

    id: int | None = Field(default=None, primary_key=True)
    phone: str | None = Field(default=None, max_length=20, unique=True)
    wechat_openid: str | None = Field(default=None, max_length=64, unique=True)
    name: str = Field(default="", max_length=100)
    # Channels this person accepts, a subset of SUBSCRIBER_CHANNELS.
    channels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="active", max_length=16, index=True)  # active | unsubscribed
    source: str = Field(default="import", max_length=16)  # import | sms | wechat | web
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    unsubscribed_at: datetime | None = None
    last_active_at: datetime | None = None


class SubscriberCategory(SQLModel, table=True):
    """One category a subscriber follows."""

    __tablename__ = "subscriber_category"

    subscriber_id: int = Field(foreign_key="subscriber.id", primary_key=True, ondelete="CASCADE")
    category: str = Field(max_length=64, primary_key=True, index=True)


class SubscriberRegion(SQLModel, table=True):
    """One region a subscriber follows; a subscriber with no region rows follows the whole city."""

    __tablename__ = "subscriber_region"

    subscriber_id: int = Field(foreign_key="subscriber.id", primary_key=True, ondelete="CASCADE")
    region: str = Field(max_length=64, primary_key=True, index=True)
