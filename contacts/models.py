"""Directory tables: regions, the department tree and contacts."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

VISIBILITIES = ("public", "staff")


def _now() -> datetime:
    return datetime.now(UTC)


class Region(SQLModel, table=True):
    """A region of the city: 市级, 柯城区, 江山市 ..."""

    __tablename__ = "dir_region"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=50, unique=True, index=True)
    sort_order: int = Field(default=0)


class Department(SQLModel, table=True):
    """A node of the department tree; `path` is the full name path joined by `/`."""

    __tablename__ = "dir_department"
    __table_args__ = (UniqueConstraint("parent_id", "name", name="uq_dir_department_parent_name"),)

    id: int | None = Field(default=None, primary_key=True)
    parent_id: int | None = Field(default=None, foreign_key="dir_department.id", index=True)
    name: str = Field(max_length=100)
    path: str = Field(max_length=500, unique=True, index=True)
    aliases: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    region_id: int | None = Field(default=None, foreign_key="dir_region.id")
    sort_order: int = Field(default=0)
    created_at: datetime = Field(default_factory=_now)


class Contact(SQLModel, table=True):
    """A person in the directory; mobile, short number and email are for staff eyes only."""

    __tablename__ = "dir_contact"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=50, index=True)
    department_id: int = Field(foreign_key="dir_department.id", index=True)
    position: str = Field(default="", max_length=100)
    office_phone: str = Field(default="", max_length=40)
    mobile: str = Field(default="", max_length=20)
    short_number: str = Field(default="", max_length=12)
    email: str = Field(default="", max_length=200)
    region_id: int | None = Field(default=None, foreign_key="dir_region.id")
    visibility: str = Field(default="public", max_length=10)
    sort_order: int = Field(default=0)
    external_id: str | None = Field(default=None, max_length=64, unique=True, index=True)
    # The person's DingTalk / 浙政钉 user id ('' for none): where `dingtalk` work notices go.
    dingtalk_userid: str = Field(default="", max_length=64, index=True)
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)


class DirectoryChange(SQLModel, table=True):
    """One change to the directory, in commit order: every node's search index follows this log.

    `kind` is "contact" (re-read `contact_id`: created, changed or deleted) or "departments" (re-read
    the department table).
    """

    __tablename__ = "dir_change"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    contact_id: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=_now, index=True)
