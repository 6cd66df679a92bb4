"""Message templates with immutable versions, the template a notice used, and agency SMS senders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from govconnect.clock import utcnow


class MessageTemplate(SQLModel, table=True):
    """An agency's named template; its content lives in versions (editing adds one)."""

    __tablename__ = "message_template"

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    name: str = Field(max_length=100)
    version: int = Field(default=1)  # the current version
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    deleted_at: datetime | None = None


class MessageTemplateVersion(SQLModel, table=True):
    """One version of a template: title and per-channel variants; never changed once written."""

    __tablename__ = "message_template_version"
    __table_args__ = (UniqueConstraint("template_id", "version", name="uq_template_version"),)

    id: int | None = Field(default=None, primary_key=True)
    template_id: int = Field(foreign_key="message_template.id", index=True)
    version: int
    title: str = Field(max_length=200)
    variants: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class NoticeTemplateUse(SQLModel, table=True):
    """The template version a notice was made from, the values given, and the variants it sends."""

    __tablename__ = "notice_template_use"

    notice_id: str = Field(foreign_key="notice.id", primary_key=True, max_length=32)
    template_id: int = Field(foreign_key="message_template.id")
    template_version: int
    values: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    variants: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class AgencySender(SQLModel, table=True):
    """An agency's own SMS signature and Alibaba template code, and its urgent-warning policy."""

    __tablename__ = "agency_sender"

    agency_id: int = Field(foreign_key="agency.id", primary_key=True)
    sms_sign_name: str = Field(default="", max_length=64)  # 衢州市应急管理局 (shown as 【…】)
    # The agency's registered free-text template (one variable); empty: the settings' default.
    sms_template_code: str = Field(default="", max_length=64)
    # Urgent 预警 notices still reach numbers on the suppression list when true.
    urgent_ignores_suppression: bool = Field(default=False)
    updated_at: datetime = Field(default_factory=utcnow)
