"""Pipeline tables: one delivery per recipient and channel, and the notice outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from govconnect.clock import utcnow
from govconnect.notices.models import new_id

# `suppressed` and `capped`: held back at fan-out (suppression list, daily SMS cap), never sent.
DELIVERY_STATUSES = (
    "queued",
    "sending",
    "sent",
    "delivered",
    "failed",
    "cancelled",
    "unknown",
    "suppressed",
    "capped",
)
# A delivery in one of these states never changes again (except a late receipt on `unknown`).
FINAL_STATUSES = ("delivered", "failed", "cancelled", "unknown", "suppressed", "capped")
# Channels whose providers send no delivery receipt: accepted is as far as we can know.
# Set exactly while a delivery is `queued` or `sending` (the sweeper's partial index).
PENDING_STATUSES = ("queued", "sending")
PENDING_CLAUSE = "next_attempt_at IS NOT NULL"
# Why queued work waits: `quiet_hours` holds normal SMS and voice from 22:00 to 07:00 Beijing time.
HELD_REASONS = ("quiet_hours",)


class Delivery(SQLModel, table=True):
    """One message to one recipient on one channel; its id is the provider's reference."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("notice_id", "channel", "recipient", name="uq_delivery_notice_channel_recipient"),
        # Pending work only: `next_attempt_at` is set while queued or sending, cleared once sent
        # or final. `status` is in no index, so claims and receipts are HOT updates (migration 0006).
        Index(
            "ix_delivery_pending",
            "notice_id",
            "next_attempt_at",
            postgresql_where=text(PENDING_CLAUSE),
            sqlite_where=text(PENDING_CLAUSE),
        ),
        Index("ix_delivery_recipient", "recipient"),
        {"postgresql_with": {"fillfactor": 70}},
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    notice_id: str = Field(foreign_key="notice.id", max_length=32)
    channel: str = Field(max_length=16)
    provider: str = Field(default="", max_length=32)
    recipient: str = Field(max_length=100)
    subscriber_id: int | None = None
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="queued", max_length=16)
    priority: int = Field(default=1)  # 0 urgent, 1 normal
    attempts: int = Field(default=0)
    parts: int = Field(default=1)
    # Set when an attempt ended without an answer (timeout): the provider may have accepted it.
    uncertain: bool = Field(default=False)
    receipts: int = Field(default=0)
    # When the next attempt is due; NULL once the delivery is sent or final (see PENDING_CLAUSE).
    next_attempt_at: datetime | None = None
    deadline_at: datetime | None = None
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    final_at: datetime | None = None
    provider_id: str | None = Field(default=None, max_length=64, index=True)
    # When the provider reported the message read (DingTalk); a fact beside the status, which stays `delivered`.
    read_at: datetime | None = None
    error_code: str | None = Field(default=None, max_length=64)
    error_reason: str | None = Field(default=None, max_length=200)
    # Why a queued delivery waits until `next_attempt_at` (HELD_REASONS); NULL once claimed again.
    held_reason: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class NoticeOutbox(SQLModel, table=True):
    """Work written with the notice in one transaction; the sweeper re-enqueues what is not done."""

    __tablename__ = "notice_outbox"

    id: int | None = Field(default=None, primary_key=True)
    notice_id: str = Field(foreign_key="notice.id", max_length=32, index=True)
    kind: str = Field(default="fanout", max_length=16)
    # Keyset cursor of the audience stream, so a re-run resumes instead of starting over.
    cursor: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    enqueued_at: datetime | None = None
    done_at: datetime | None = Field(default=None, index=True)


CALLBACK_STATUSES = ("pending", "delivered", "rejected", "failed")


class AgencyCallback(SQLModel, table=True):
    """Status events owed to an agency's callback URL: kept here (not only in the queue) until answered.

    `pending` rows are due at `next_attempt_at`; a worker that takes one pushes that time a lease
    ahead, so a worker (or a Redis) that dies mid-post leaves it due again for the sweeper. Retried
    with backoff for at least 24 hours, then `failed` (the agency sees it in its callback list);
    `rejected` when the agency's server answered 4xx.
    """

    __tablename__ = "agency_callback"
    __table_args__ = (Index("ix_agency_callback_agency_status", "agency_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id")
    events: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=12)
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = Field(default=None, index=True)
    last_result: str = Field(default="", max_length=40)
    created_at: datetime = Field(default_factory=utcnow)
    done_at: datetime | None = Field(default=None)
