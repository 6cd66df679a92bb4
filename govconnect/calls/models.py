"""One row per click-to-dial call: who asked, whom (by contact or delivery id, never the number), how it ended."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from channels.aliyun_voice import DIAL_PREFIX
from govconnect.clock import utcnow

# calling until the provider's report; then one of the others (rejected: the provider refused the request).
CALL_STATES = ("calling", "answered", "busy", "no_answer", "cancelled", "failed", "rejected")
FINAL_CALL_STATES = CALL_STATES[1:]


def new_call_id() -> str:
    """Our OutId for the provider: the click-to-dial prefix and random hex, 32 characters."""
    return DIAL_PREFIX + uuid.uuid4().hex[: 32 - len(DIAL_PREFIX)]


class DialCall(SQLModel, table=True):
    """A 双呼 call: the numbers are looked up when placing it and are not kept here."""

    __tablename__ = "dial_call"

    id: str = Field(default_factory=new_call_id, primary_key=True, max_length=32)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    actor: str = Field(max_length=80)  # "staff:12" or "key:gc_ab12"
    staff_user_id: int | None = Field(default=None, index=True)
    target_type: str = Field(max_length=16)  # "contact" or "delivery"
    target_id: str = Field(max_length=64)
    status: str = Field(default="calling", max_length=16)
    leg: str = Field(default="", max_length=8)  # which leg ended an unanswered call: caller / callee
    provider_call_id: str | None = Field(default=None, max_length=64, index=True)
    error_code: str | None = Field(default=None, max_length=64)
    duration: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
