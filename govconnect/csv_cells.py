"""Spreadsheet-safe CSV cells: the one helper for every value written into a CSV export."""

from __future__ import annotations

from typing import Any

# A cell starting with one of these is read as a formula by Excel/WPS/LibreOffice (tab and CR too).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> str:
    """The value as CSV cell text; a leading formula character is neutralised with a quote."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text
