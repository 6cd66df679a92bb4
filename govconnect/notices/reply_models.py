"""Inbound SMS replies, linked to the last notice sent to the number within a week."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from govconnect.clock import utcnow

# What a reply to a meeting notice (回执) says: "1" will attend, "2" will not; anything else is "".
ATTENDANCE_ANSWERS = {"1": "attend", "2": "decline"}
ATTENDANCE = "attendance"  # the notice's `replies` flag for a meeting notice
# Appended to a meeting notice's text, so every channel asks the same question.
ATTENDANCE_ASK = "\n请回复1确认参加，回复2表示不参加。"


class NoticeReply(SQLModel, table=True):
    """One SMS a person sent us that was not an opt-out."""

    __tablename__ = "notice_reply"
    __table_args__ = (Index("ix_notice_reply_notice", "notice_id", "received_at"),)

    id: int | None = Field(default=None, primary_key=True)
    notice_id: str | None = Field(default=None, foreign_key="notice.id", max_length=32)
    agency_id: int | None = Field(default=None, index=True)
    delivery_id: str | None = Field(default=None, max_length=32)
    sender: str = Field(max_length=20)
    text: str = Field(max_length=500)
    provider: str = Field(max_length=32)
    answer: str = Field(default="", max_length=8)  # attend / decline for a meeting notice
    received_at: datetime = Field(default_factory=utcnow)
