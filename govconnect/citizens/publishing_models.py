"""Tables for citizen subscription flows: SMS verification codes and the regions citizens pick."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from govconnect.clock import utcnow


class VerificationCode(SQLModel, table=True):
    """A 6-digit SMS code; only keyed hashes of the number, the IP and the code are stored."""

    __tablename__ = "verification_code"

    id: int | None = Field(default=None, primary_key=True)
    phone_hash: str = Field(max_length=64, index=True)
    ip_hash: str = Field(max_length=64, index=True)
    code_hash: str = Field(max_length=64)
    purpose: str = Field(default="subscribe", max_length=16)
    attempts: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    expires_at: datetime
    consumed_at: datetime | None = None


class PublicRegion(SQLModel, table=True):
    """A region citizens can follow and notices can target (柯城区, 江山市 ...); admin-managed."""

    __tablename__ = "public_region"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True, index=True)
    sort_order: int = Field(default=0)
    active: bool = Field(default=True)
