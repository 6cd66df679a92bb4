"""CMPP status reports → receipts: Msg_Id → our reference, and a long message's parts → one receipt.

A long message is delivered when every part's report is `DELIVRD`, and failed with the first
other `Stat` (`EXPIRED`, `UNDELIV`, `REJECTD` ...).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from channels.base import CHINA_TZ, Receipt
from channels.cmpp_pdu import StatusReport, format_msg_id

DELIVERED = "DELIVRD"
STAT_REASONS = {
    "DELIVRD": "delivered",
    "EXPIRED": "validity period expired",
    "DELETED": "deleted by the SMSC",
    "UNDELIV": "undeliverable",
    "ACCEPTD": "accepted",
    "UNKNOWN": "unknown state",
    "REJECTD": "rejected",
}


@dataclass
class _Tracked:
    """One message on its way: its reference, its parts' Msg_Ids and the stats reported so far."""

    reference: str
    total: int
    part_ids: dict[int, int] = field(default_factory=dict)
    stats: dict[int, str] = field(default_factory=dict)
    final: Receipt | None = None


class ReceiptTracker:
    """Msg_Id → reference and reference → parts, bounded so unreported messages cannot grow it forever.

    Parts are registered as their SUBMIT_RESP arrives (before any report for them can be read),
    and a settled message's Msg_Ids are remembered a while so a resent report repeats its receipt.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._by_reference: OrderedDict[str, _Tracked] = OrderedDict()
        self._by_msg_id: dict[int, _Tracked] = {}
        self._settled: OrderedDict[int, Receipt] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_reference)

    def expect(self, reference: str, total: int) -> None:
        """A message of `total` parts is about to be submitted (a resend replaces the old attempt)."""
        self.discard(reference)
        self._by_reference[reference] = _Tracked(reference, total)
        while len(self._by_reference) > self.limit:
            self.discard(next(iter(self._by_reference)))

    def add_part(self, reference: str, pk_number: int, msg_id: int) -> None:
        """The ISMG accepted part `pk_number` under `msg_id`."""
        tracked = self._by_reference.get(reference)
        if tracked is not None:
            tracked.part_ids[pk_number] = msg_id
            self._by_msg_id[msg_id] = tracked

    def discard(self, reference: str) -> None:
        """Forget a message (not accepted after all, or evicted)."""
        tracked = self._by_reference.pop(reference, None)
        if tracked is not None:
            for msg_id in tracked.part_ids.values():
                if self._by_msg_id.get(msg_id) is tracked:
                    del self._by_msg_id[msg_id]

    def report(self, report: StatusReport) -> Receipt | None:
        """Apply one part's status report; a Receipt once the whole message is settled."""
        occurred = _report_time(report.done_time)
        tracked = self._by_msg_id.get(report.msg_id)
        if tracked is None:
            settled = self._settled.get(report.msg_id)
            if settled is not None:
                return settled  # the ISMG resent a report we already turned into a receipt
            # Not ours any more (restart, eviction): the pipeline can still match the Msg_Id.
            delivered = report.stat == DELIVERED
            reason = _reason(report.stat)
            return Receipt(None, format_msg_id(report.msg_id), delivered, report.stat, reason, occurred, "cmpp")
        duplicate = report.msg_id in tracked.stats
        tracked.stats.setdefault(report.msg_id, report.stat)
        complete = len(tracked.stats) == tracked.total
        newly: Receipt | None = None
        if tracked.final is None:
            first = tracked.part_ids.get(1, report.msg_id)
            if report.stat != DELIVERED:
                # One lost part loses the message: report it now; the other parts' reports change nothing.
                newly = Receipt(
                    tracked.reference, format_msg_id(first), False, report.stat, _reason(report.stat), occurred, "cmpp"
                )
            elif complete:
                newly = Receipt(tracked.reference, format_msg_id(first), True, DELIVERED, "delivered", occurred, "cmpp")
            tracked.final = newly
        if complete and tracked.final is not None:
            self.discard(tracked.reference)
            for msg_id in tracked.part_ids.values():
                self._settled[msg_id] = tracked.final
            while len(self._settled) > self.limit:
                self._settled.popitem(last=False)
        if newly is not None:
            return newly
        return tracked.final if duplicate else None


def _reason(stat: str) -> str:
    return STAT_REASONS.get(stat, "carrier status")


def _report_time(done_time: str) -> datetime | None:
    """Done_time YYMMDDHHMM in China time, as aware UTC."""
    try:
        return datetime.strptime(done_time, "%y%m%d%H%M").replace(tzinfo=CHINA_TZ).astimezone(UTC)
    except ValueError:
        return None
