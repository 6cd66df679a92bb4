"""Logging setup: one masking filter keeps phone numbers and secrets out of every log line.

The filter rewrites a record's message, arguments, exception text and stack text (see
`govconnect.security.mask_for_log`). It sits on every handler `configure_logging` knows of,
and the log record factory applies it as each record is made, so handlers added later (uvicorn's,
a test's capture handler, an operator's file handler) never see an unmasked record either.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from govconnect.security import mask_for_log

_MASKED_FLAG = "_govconnect_masked"


def _mask_value(value: Any) -> Any:
    """A log argument with mobiles and secrets masked; numbers stay numbers unless they are a phone."""
    if isinstance(value, str):
        return mask_for_log(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        text = str(value)
        masked = mask_for_log(text)
        return value if masked == text else masked
    text = str(value)
    masked = mask_for_log(text)
    return value if masked == text else masked


def mask_record(record: logging.LogRecord) -> None:
    """Mask a record in place (idempotent): message, arguments, exception and stack text."""
    if getattr(record, _MASKED_FLAG, False):
        return
    setattr(record, _MASKED_FLAG, True)
    if isinstance(record.msg, str):
        record.msg = mask_for_log(record.msg)
    elif record.msg is not None and not isinstance(record.msg, int | float):
        record.msg = mask_for_log(str(record.msg))
    if isinstance(record.args, tuple):
        record.args = tuple(_mask_value(a) for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _mask_value(v) for k, v in record.args.items()}
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a masked argument no longer fits its %d; keep the masked text
        message = None
    if message is not None:
        masked = mask_for_log(message)
        if masked != message:  # a number split across arguments: collapse to the masked text
            record.msg, record.args = masked, None
    else:
        record.msg = mask_for_log(f"{record.msg} {record.args!r}")
        record.args = None
    if record.exc_info and record.exc_info[0] is not None:
        # Formatters print exc_text when it is set; tracebacks carry exception text and values.
        record.exc_text = mask_for_log("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    elif record.exc_text:
        record.exc_text = mask_for_log(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_for_log(record.stack_info)


class LogMaskingFilter(logging.Filter):
    """Masks mobiles and secrets in a record before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


# Kept for callers of the old name.
PhoneMaskFilter = LogMaskingFilter

_original_factory = logging.getLogRecordFactory()


def _masking_record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _original_factory(*args, **kwargs)
    mask_record(record)
    return record


def install_log_masking() -> None:
    """Mask every record as it is made, and put the filter on every handler of the root and uvicorn loggers."""
    if logging.getLogRecordFactory() is not _masking_record_factory:
        logging.setLogRecordFactory(_masking_record_factory)
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy", "arq"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, LogMaskingFilter) for f in handler.filters):
                handler.addFilter(LogMaskingFilter())


def configure_logging(level: str = "INFO") -> None:
    """Configure the root logger once, with masking on every handler and every record."""
    root = logging.getLogger()
    if not any(isinstance(f, LogMaskingFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root.addHandler(handler)
    root.setLevel(level.upper())
    install_log_masking()
