"""Receipts that arrive faster than the database applies them are refused (503), not piled up in memory."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from channels.base import Receipt
from govconnect.notices import receipts as receipts_module
from govconnect.notices.receipts import ReceiptBatcher, ReceiptOutcome, ReceiptsBusy


def _reports(n: int, start: int = 0) -> list[Receipt]:
    return [Receipt(reference=f"d{i}", provider_id=None, delivered=True) for i in range(start, start + n)]


async def test_a_full_batcher_refuses_at_once_and_takes_reports_again_once_it_drains(monkeypatch: Any) -> None:
    release = threading.Event()
    applied: list[int] = []

    def slow_apply(_engine: Any, reports: list[Receipt]) -> ReceiptOutcome:
        release.wait(5)  # the database is busy until the test lets it go
        applied.append(len(reports))
        return ReceiptOutcome(updated=len(reports))

    monkeypatch.setattr(receipts_module, "apply_receipts", slow_apply)
    batcher = ReceiptBatcher(engine=None, max_batch=100, max_waiting=5)  # type: ignore[arg-type]
    first = asyncio.create_task(batcher.apply(_reports(1)))
    await asyncio.sleep(0.05)  # the flusher has taken the first report and waits on the database
    second = asyncio.create_task(batcher.apply(_reports(4, 1)))
    await asyncio.sleep(0.05)
    with pytest.raises(ReceiptsBusy):  # 4 waiting + 2 more > 5: answered now, nothing kept
        await batcher.apply(_reports(2, 5))
    release.set()
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert applied == [1, 4]
    await batcher.apply(_reports(2, 5))  # drained: taken again
    assert applied == [1, 4, 2]
