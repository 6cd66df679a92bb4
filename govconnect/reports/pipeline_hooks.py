"""What the notice pipeline calls, in its own transactions, to keep the report rollups.

Each function takes the rows an UPDATE ... RETURNING (or INSERT ... RETURNING) changed, selected
with `ROLLUP_RETURNING` first, so only real transitions are counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from channels.catalogue import NO_RECEIPT_CHANNELS
from govconnect.notices.pipeline_models import Delivery
from govconnect.reports.rollup import DeliveryRow, count_deliveries

D = Delivery.__table__  # type: ignore[attr-defined]
# Columns every hook needs, first in each RETURNING list.
ROLLUP_RETURNING = (D.c.notice_id, D.c.channel, D.c.provider, D.c.created_at)
# An opt-out is said to be caused by the last message the person got within this long before it.
OPTOUT_ATTRIBUTION = timedelta(days=7)


def _rows(changed: Sequence[Any]) -> list[DeliveryRow]:
    return [DeliveryRow(str(r[0]), str(r[1]), str(r[2] or ""), r[3]) for r in changed]


def count_created(conn: Connection, changed: Sequence[Any]) -> None:
    """Deliveries a fan-out page wrote (not yet assigned a provider)."""
    count_deliveries(conn, _rows(changed), "deliveries")


def count_accepted(conn: Connection, changed: Sequence[Any]) -> None:
    """Deliveries a provider accepted: rows of (ROLLUP_RETURNING..., status, parts, final_at)."""
    rows = _rows(changed)
    count_deliveries(conn, rows, "sent")
    sms = [(row, int(r[5] or 1)) for row, r in zip(rows, changed, strict=True) if row.channel == "sms"]
    count_deliveries(conn, [row for row, _ in sms], "sms_parts", amounts=[parts for _, parts in sms])
    # Channels without receipts are final once accepted: that is as delivered as we can know.
    final = [
        (row, r[6])
        for row, r in zip(rows, changed, strict=True)
        if row.channel in NO_RECEIPT_CHANNELS and r[4] == "sent" and r[6] is not None
    ]
    count_deliveries(conn, [row for row, _ in final], "delivered", ttd_until=[at for _, at in final])


def count_failed(conn: Connection, changed: Sequence[Any], reasons: Sequence[str]) -> None:
    """Deliveries that failed, with the provider code of each."""
    count_deliveries(conn, _rows(changed), "failed", reasons=reasons)


def count_receipts(
    conn: Connection, changed: Sequence[Any], delivered: bool, reason: str, moment: datetime, late: bool
) -> None:
    """Deliveries a status report moved to delivered or failed; `late` when they had been `unknown`."""
    rows = _rows(changed)
    if delivered:
        count_deliveries(conn, rows, "delivered", ttd_until=[moment] * len(rows), correct_unknown=late)
    else:
        count_deliveries(conn, rows, "failed", reasons=[reason] * len(rows), correct_unknown=late)


def count_unknown(conn: Connection, changed: Sequence[Any]) -> None:
    """Deliveries the sweeper gave up waiting for a receipt on."""
    count_deliveries(conn, _rows(changed), "unknown")


def count_cancelled(conn: Connection, changed: Sequence[Any]) -> None:
    """Queued deliveries a cancel stopped."""
    count_deliveries(conn, _rows(changed), "cancelled")


def count_optout(conn: Connection, recipients: Sequence[str], moment: datetime) -> None:
    """An opt-out, counted against the last delivery that reached one of these addresses lately."""
    addresses = [r for r in recipients if r]
    if not addresses:
        return
    last = conn.execute(
        select(*ROLLUP_RETURNING)
        .where(D.c.recipient.in_(addresses), D.c.created_at >= moment - OPTOUT_ATTRIBUTION)
        .order_by(D.c.created_at.desc())
        .limit(1)
    ).first()
    if last is not None:
        count_deliveries(conn, _rows([last]), "optouts")
