"""Foundation models: agencies, their API keys and staff accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from govconnect.clock import utcnow

SCOPES = ("notices:send", "notices:read", "notices:approve", "contacts:write", "subscribers:read", "admin")
# Governance roles: operator = drafter, approver = signs off (and drafts), admin = both and policy.
ROLES = ("staff", "operator", "approver", "admin")


class Agency(SQLModel, table=True):
    """A government agency that sends notices, e.g. 衢州市应急管理局."""

    __tablename__ = "agency"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    region: str = Field(default="", max_length=100)
    daily_limit: int = Field(default=1_000_000)
    callback_url: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)


class ApiKey(SQLModel, table=True):
    """An agency's API key; only its SHA-256 hash and a display prefix are stored."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    prefix: str = Field(max_length=32, index=True)
    key_hash: str = Field(max_length=64, unique=True)
    name: str = Field(default="", max_length=100)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class StaffUser(SQLModel, table=True):
    """A staff account for the mobile site; the password is argon2-hashed."""

    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    role: str = Field(default="staff", max_length=16)
    password_hash: str = Field(max_length=255)
    display_name: str = Field(default="", max_length=100)
    active: bool = Field(default=True)
    # Where approvers are told that a notice waits for them (migration 0011).
    phone: str | None = Field(default=None, max_length=20)
    created_at: datetime = Field(default_factory=utcnow)
