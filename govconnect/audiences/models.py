"""Saved audience lists: one row per list, one per accepted person, one per refused file row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from govconnect.clock import utcnow


class AudienceList(SQLModel, table=True):
    """An uploaded audience file, kept so notices can reuse it by id."""

    __tablename__ = "audience_list"

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    name: str = Field(max_length=200)
    filename: str = Field(default="", max_length=255)
    # Placeholder columns besides the phone (e.g. name, 地址), in file order.
    columns: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="importing", max_length=16)  # importing | ready
    rows_read: int = Field(default=0)
    accepted: int = Field(default=0)
    refused: int = Field(default=0)
    duplicates: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow)


class AudienceMember(SQLModel, table=True):
    """One person of a saved list (duplicates in the file are merged: the first row wins)."""

    __tablename__ = "audience_member"
    __table_args__ = (UniqueConstraint("list_id", "phone", name="uq_audience_member_list_phone"),)

    id: int | None = Field(default=None, primary_key=True)
    list_id: int = Field(foreign_key="audience_list.id", ondelete="CASCADE")
    phone: str = Field(max_length=20)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class AudienceRefusal(SQLModel, table=True):
    """A file row that was not accepted: its line in the file (header = line 1) and a reason code."""

    __tablename__ = "audience_refusal"

    id: int | None = Field(default=None, primary_key=True)
    list_id: int = Field(foreign_key="audience_list.id", ondelete="CASCADE", index=True)
    line: int
    reason: str = Field(max_length=32)
