"""The suppression list and the per-person daily SMS counts; numbers are stored only as keyed hashes."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from govconnect.clock import utcnow


class Suppression(SQLModel, table=True):
    """A number that gets no normal notice from any agency (an opt-out reply, an operator, a purge)."""

    __tablename__ = "suppression"

    id: int | None = Field(default=None, primary_key=True)
    # HMAC-SHA256 of the normalised number under SECRET_KEY: survives the purge of the subscriber.
    phone_hash: str = Field(max_length=64, unique=True)
    phone_hint: str = Field(default="", max_length=20)  # 138****5678, for operators
    source: str = Field(max_length=32)  # sms-reply:<provider> | operator | purge
    reason: str = Field(default="", max_length=200)
    agency_id: int | None = Field(default=None, foreign_key="agency.id")  # the operator's agency
    created_at: datetime = Field(default_factory=utcnow)


class SmsDayCount(SQLModel, table=True):
    """Normal SMS written for one number on one Beijing day, all agencies together (the daily cap)."""

    __tablename__ = "sms_day_count"

    day: str = Field(max_length=10, primary_key=True)  # YYYY-MM-DD, Beijing time
    phone_hash: str = Field(max_length=64, primary_key=True)
    count: int = Field(default=0)
