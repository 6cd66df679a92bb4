"""API schemas for governance: policy, reasons, notice edits, corrections and recurring schedules."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from govconnect.notices.schemas import AudienceSpec, NoticeCreate
from govconnect.text_rules import MultilineText, Text, TitleText

ApprovalMode = Literal["none", "public", "large", "all"]


class PolicyPublic(BaseModel):
    """The agency's sign-off policy."""

    require_approval: ApprovalMode
    large_audience: int
    approvers: int
    urgent_at_once: bool
    review_hours: int


class PolicyUpdate(BaseModel):
    """Fields of the policy to change (the others keep their value)."""

    model_config = ConfigDict(extra="forbid")

    require_approval: ApprovalMode | None = None
    large_audience: int | None = Field(default=None, ge=1, le=100_000_000)
    approvers: int | None = Field(default=None, ge=1, le=5)
    urgent_at_once: bool | None = None
    review_hours: int | None = Field(default=None, ge=1, le=720)


class Reason(BaseModel):
    """Why a notice is rejected or retracted (shown to the drafter, or on the withdrawn notice's page)."""

    model_config = ConfigDict(extra="forbid")

    reason: MultilineText = Field(min_length=1, max_length=500)


class NoticeUpdate(BaseModel):
    """Fields of a notice that has not started, to change."""

    model_config = ConfigDict(extra="forbid")

    title: TitleText | None = Field(default=None, min_length=1, max_length=200)
    body: MultilineText | None = Field(default=None, min_length=1, max_length=5000)
    category: Text | None = Field(default=None, max_length=64)
    regions: list[Text] | None = Field(default=None, max_length=200)
    urgency: Literal["normal", "urgent"] | None = None
    channels: list[Text] | None = Field(default=None, min_length=1, max_length=7)
    audience: AudienceSpec | None = None
    send_at: datetime | None = None


class CorrectionCreate(NoticeCreate):
    """A correcting notice; `resend` also sends it to the original's audience on its SMS/WeChat channels."""

    resend: bool = False


class ScheduleCreate(BaseModel):
    """A recurring notice: `notice` (its send_at is the first occurrence, Beijing time), a rule and an end date."""

    model_config = ConfigDict(extra="forbid")

    notice: NoticeCreate
    rule: Literal["daily", "weekly", "monthly"]
    ends_on: date


class SchedulePublic(BaseModel):
    """A recurring notice and where it stands."""

    id: int
    rule: str
    first_at: datetime
    ends_on: date
    next_at: datetime | None
    occurrences: int
    notice_ids: list[str]
    cancelled_at: datetime | None
