"""Logging setup: every record passes a filter that masks phone numbers."""

from __future__ import annotations

import logging

from govconnect.security import mask_phones_in_text


class PhoneMaskFilter(logging.Filter):
    """Rewrites a record's message so that no mobile number reaches a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not kill logging
            return True
        masked = mask_phones_in_text(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True


def configure_logging(level: str = "INFO") -> None:
    """Configure the root logger once, with phone masking on every handler."""
    root = logging.getLogger()
    if not any(isinstance(f, PhoneMaskFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        handler.addFilter(PhoneMaskFilter())
        root.addHandler(handler)
    root.setLevel(level.upper())
