"""Core notice tables shared by the pipeline (deliveries) and publishing (site, TV, Weibo)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from channels.catalogue import CHANNEL_NAMES
from govconnect.clock import utcnow

CHANNELS = CHANNEL_NAMES  # one table: channels/catalogue.py
URGENCIES = ("normal", "urgent")
NOTICE_STATUSES = (
    "draft",
    "pending_approval",
    "approved",
    "rejected",
    "scheduled",
    "accepted",
    "sending",
    "completed",
    "cancelled",
    "failed",
    "retracted",
    "expired",
)
# What the office calls each status (pages and the console).
NOTICE_STATUS_NAMES = {
    "draft": "草稿",
    "pending_approval": "待审核",
    "approved": "已审核",
    "rejected": "已退回",
    "scheduled": "定时",
    "accepted": "已受理",
    "sending": "发送中",
    "completed": "已完成",
    "cancelled": "已取消",
    "failed": "失败",
    "retracted": "已撤回",
    "expired": "已过期",
}
# Statuses a notice may be created in (accept decides by the agency's approval policy and send_at).
INITIAL_STATUSES = ("draft", "pending_approval", "scheduled", "accepted")
# Every allowed status change; `govconnect.notices.gate.change_status` refuses anything else.
NOTICE_TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"pending_approval", "scheduled", "accepted", "cancelled"}),
    # Editing a pending notice returns it to draft; not approved by send_at, it expires.
    "pending_approval": frozenset({"approved", "rejected", "draft", "cancelled", "expired"}),
    "rejected": frozenset({"draft", "cancelled"}),
    # Approved notices wait for the fan-out (and their send_at); editing one needs approval again.
    "approved": frozenset({"sending", "draft", "cancelled", "retracted"}),
    # Edited: a new send_at now makes it go at once; a policy that now asks for sign-off holds it.
    "scheduled": frozenset({"sending", "accepted", "pending_approval", "cancelled", "retracted"}),
    "accepted": frozenset({"sending", "cancelled", "retracted"}),
    "sending": frozenset({"completed", "failed", "cancelled", "retracted"}),
    "completed": frozenset({"retracted"}),
    "failed": frozenset({"retracted"}),
    "cancelled": frozenset({"retracted"}),
    "retracted": frozenset(),
    "expired": frozenset(),
}
# Statuses the public surfaces (/m/, feeds, /tv/, Weibo) may show, once the notice is due.
VISIBLE_STATUSES = ("approved", "accepted", "sending", "completed")
# Notices whose text may still change (PATCH): nothing has gone out yet.
EDITABLE_STATUSES = ("draft", "pending_approval", "rejected", "approved", "scheduled")


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
    # Governance (migration 0011): who drafted it, the last status change, reasons, links.
    created_by: str = Field(default="", max_length=80)
    status_changed_at: datetime | None = None
    status_changed_by: str = Field(default="", max_length=80)
    rejected_reason: str = Field(default="", max_length=500)
    retracted_reason: str = Field(default="", max_length=500)
    retracted_at: datetime | None = None
    corrects_id: str | None = Field(default=None, max_length=32, index=True)
    # Urgent notices sent at once under the agency's policy are reviewed after the fact.
    review_due_at: datetime | None = None
    reviewed_at: datetime | None = None
    reviewed_by: str = Field(default="", max_length=80)
    schedule_id: int | None = Field(default=None, index=True)
    # "attendance": a meeting notice (回执) asking for 1 (will attend) / 2 (will not); migration 0020.
    replies: str = Field(default="", max_length=16)
    # Escalation: DingTalk/WeCom deliveries not read after this many seconds get an SMS (migration 0020).
    escalate_after_seconds: int | None = None
    # The voice step: urgent notices still unread after this many seconds are phoned (migration 0021).
    escalate_voice_after_seconds: int | None = None


class NoticeApproval(SQLModel, table=True):
    """One approver's sign-off on a notice (the policy may ask for several)."""

    __tablename__ = "notice_approval"
    __table_args__ = (Index("ix_notice_approval_once", "notice_id", "approver", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    notice_id: str = Field(foreign_key="notice.id", max_length=32)
    approver: str = Field(max_length=80)
    created_at: datetime = Field(default_factory=utcnow)
