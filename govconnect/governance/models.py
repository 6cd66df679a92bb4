"""Governance tables: each agency's approval policy and recurring notice schedules."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from govconnect.clock import utcnow

# none: nothing needs approval; public: notices on site/TV/Weibo; large: an audience above
# `large_audience` people; all: every notice.
APPROVAL_MODES = ("none", "public", "large", "all")
RECURRENCE_RULES = ("daily", "weekly", "monthly")


class AgencyPolicy(SQLModel, table=True):
    """Which of an agency's notices need sign-off, by how many approvers, and the urgent path."""

    __tablename__ = "agency_policy"

    agency_id: int = Field(foreign_key="agency.id", primary_key=True)
    require_approval: str = Field(default="none", max_length=16)
    large_audience: int = Field(default=10_000)
    approvers: int = Field(default=1)
    # Urgent notices go at once and are reviewed after the fact within `review_hours`.
    urgent_at_once: bool = Field(default=False)
    review_hours: int = Field(default=24)
    updated_at: datetime = Field(default_factory=utcnow)


class NoticeSchedule(SQLModel, table=True):
    """A recurring notice: every occurrence becomes its own notice, `lead` ahead of its time."""

    __tablename__ = "notice_schedule"

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    created_by: str = Field(max_length=80)
    # The notice request (as the API takes it) each occurrence is created from.
    request: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    rule: str = Field(max_length=16)
    # The first occurrence; the others keep its Beijing time of day, weekday or day of month.
    first_at: datetime
    ends_on: date
    next_at: datetime | None = Field(default=None, index=True)
    occurrences: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow)
    cancelled_at: datetime | None = None
