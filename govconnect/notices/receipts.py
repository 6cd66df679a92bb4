"""Provider status reports: match by our reference, move deliveries on, ignore unknowns and duplicates."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from channels.base import Receipt
from govconnect.models import utcnow
from govconnect.notices.pipeline_models import Delivery

log = logging.getLogger("govconnect.notices")
D = Delivery.__table__  # type: ignore[attr-defined]
# A delivered receipt wins over a pending retry (the provider did take an attempt we thought lost).
DELIVERED_FROM = ("queued", "sending", "sent", "unknown")
FAILED_FROM = ("sending", "sent", "unknown")


@dataclass
class ReceiptOutcome:
    """What a batch of receipts did."""

    updated: int = 0
    duplicates: int = 0
    unknown: int = 0
    changed: list[str] = field(default_factory=list)
    notices: set[str] = field(default_factory=set)


def _find(conn: object, receipt: Receipt) -> tuple[str, str, str] | None:
    ref = (receipt.reference or "").strip()
    if ref and len(ref) <= 32:
        row = conn.execute(select(D.c.id, D.c.status, D.c.notice_id).where(D.c.id == ref)).first()  # type: ignore[attr-defined]
        if row is not None:
            return row[0], row[1], row[2]
    if receipt.provider_id:
        # One provider request may carry several recipients (SendSms to many numbers): add the number.
        query = select(D.c.id, D.c.status, D.c.notice_id).where(D.c.provider_id == receipt.provider_id[:64])
        if receipt.recipient:
            query = query.where(D.c.recipient == receipt.recipient)
        rows = conn.execute(query.limit(2)).all()  # type: ignore[attr-defined]
        if len(rows) == 1:
            return rows[0][0], rows[0][1], rows[0][2]
    if receipt.recipient:
        # The report can overtake our own record of the send (the provider answered, we have not yet
        # written its id): the one in-flight delivery to this address is the one it reports on.
        rows = conn.execute(  # type: ignore[attr-defined]
            select(D.c.id, D.c.status, D.c.notice_id)
            .where(D.c.recipient == receipt.recipient, D.c.status == "sending", D.c.provider_id.is_(None))
            .limit(2)
        ).all()
        if len(rows) == 1:
            return rows[0][0], rows[0][1], rows[0][2]
    return None


def _apply_one(conn: Any, receipt: Receipt, moment: Any, outcome: ReceiptOutcome) -> None:
    # A worker may move the delivery on (sending → sent) between our read and our write: read again.
    for _ in range(3):
        found = _find(conn, receipt)
        if found is None:
            outcome.unknown += 1
            return
        delivery_id, status, notice_id = found
        allowed = DELIVERED_FROM if receipt.delivered else FAILED_FROM
        if status not in allowed:
            conn.execute(update(D).where(D.c.id == delivery_id).values(receipts=D.c.receipts + 1))
            outcome.duplicates += 1
            return
        values: dict[str, object] = {
            "receipts": D.c.receipts + 1,
            "updated_at": moment,
            "status": "delivered" if receipt.delivered else "failed",
            "final_at": moment,
        }
        if not receipt.delivered:
            values.update(error_code=(receipt.code or "failed")[:64], error_reason=(receipt.reason or "")[:200])
        result = conn.execute(update(D).where(D.c.id == delivery_id, D.c.status == status).values(**values))
        if result.rowcount:
            outcome.updated += 1
            outcome.changed.append(delivery_id)
            outcome.notices.add(notice_id)
            return
    log.warning("receipt for a delivery that kept changing; left for the provider's retry")


def apply_receipts(engine: Engine, receipts: Sequence[Receipt]) -> ReceiptOutcome:
    """Apply status reports; unknown references and repeats change nothing but are counted."""
    outcome = ReceiptOutcome()
    moment = utcnow()
    with engine.begin() as conn:
        for receipt in receipts:
            _apply_one(conn, receipt, moment, outcome)
    if outcome.unknown or outcome.duplicates:
        log.info(
            "receipts: %d applied, %d duplicates, %d unknown", outcome.updated, outcome.duplicates, outcome.unknown
        )
    return outcome
