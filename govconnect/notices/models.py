"""Core notice tables shared by the pipeline (deliveries) and publishing (site, TV, Weibo)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from govconnect.clock import utcnow

CHANNELS = ("sms", "voice", "wechat", "wecom", "weibo", "site", "tv")
PUBLIC_CHANNELS = ("site", "tv", "weibo")
URGENCIES = ("normal", "urgent")
NOTICE_STATUSES = ("scheduled", "accepted", "sending", "completed", "cancelled", "failed")


def new_id() -> str:
    """A random 32-hex-digit id, used in URLs and as providers' reference."""
    return uuid.uuid4().hex


class Category(SQLModel, table=True):
    """A notice category citizens subscribe to (政务公开, 应急预警 ...); admin-managed."""

    __tablename__ = "category"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=100)
    sort_order: int = Field(default=0)
    active: bool = Field(default=True)


class Notice(SQLModel, table=True):
    """A notice an agency sent once, to be delivered on several channels and/or published."""

    __tablename__ = "notice"
    __table_args__ = (
        Index("ix_notice_agency_idem", "agency_id", "idempotency_key", unique=True),
        Index("ix_notice_public_created", "public", "created_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    title: str = Field(max_length=200)
    body: str
    category: str = Field(default="", max_length=64, index=True)
    regions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    urgency: str = Field(default="normal", max_length=16)
    channels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    audience: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="accepted", max_length=16, index=True)
    # Public notices (channels include site, tv or weibo) appear on the mobile site and TV feeds.
    public: bool = Field(default=False)
    idempotency_key: str | None = Field(default=None, max_length=200)
    request_hash: str | None = Field(default=None, max_length=64)
    send_at: datetime | None = None
    # People reached at accept time (counted for the agency's daily limit); added by migration 0004.
    recipient_count: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow)
    published_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
