"""Checking audience rows, the same for an uploaded file and a notice's inline CSV.

Headers may be Chinese or English: 手机号/phone (required), 姓名/name; every other column becomes
a placeholder of that name. A row is accepted with a valid mainland mobile number, else refused
with its line and one reason code; a number seen before is merged into the first row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from govconnect.audiences.reader import FileRefused
from govconnect.citizens.optout import normalise_phone

PHONE_HEADERS = frozenset({"phone", "mobile", "手机号", "手机号码", "手机"})
NAME_HEADERS = frozenset({"name", "姓名"})
MOBILE = re.compile(r"^1[3-9]\d{9}$")
MAX_CELL = 500
MAX_COLUMNS = 50

# Reason codes of refused rows.
EMPTY_ROW = "empty_row"
MISSING_PHONE = "missing_phone"
INVALID_PHONE = "invalid_phone"
VALUE_TOO_LONG = "value_too_long"
REASONS = (EMPTY_ROW, MISSING_PHONE, INVALID_PHONE, VALUE_TOO_LONG)


@dataclass(frozen=True)
class Header:
    """Where the phone is, and the placeholder name of every other column."""

    phone_index: int
    columns: list[tuple[int, str]]

    @property
    def placeholders(self) -> list[str]:
        """Placeholder names the file can fill, in column order."""
        return [name for _index, name in self.columns]


def read_header(cells: list[str]) -> Header:
    """The header row, or FileRefused when it has no phone column."""
    names = [c.strip().lstrip("\ufeff") for c in cells]
    phone_index = next((i for i, n in enumerate(names) if n.lower() in PHONE_HEADERS), None)
    if phone_index is None:
        raise FileRefused("no_phone_column", "文件需要“手机号”或 phone 列 / the file needs a 手机号 or phone column")
    if len(names) > MAX_COLUMNS:
        raise FileRefused("too_many_columns", f"列数超过 {MAX_COLUMNS} / more than {MAX_COLUMNS} columns")
    columns: list[tuple[int, str]] = []
    seen: set[str] = set()
    for index, name in enumerate(names):
        if index == phone_index or not name:
            continue
        key = "name" if name.lower() in NAME_HEADERS else name
        if key not in seen:
            seen.add(key)
            columns.append((index, key))
    return Header(phone_index, columns)


def check_row(header: Header, cells: list[str]) -> tuple[str, dict[str, str]] | str:
    """(phone, placeholder values) for a good row, else the reason code."""
    if not any(c.strip() for c in cells):
        return EMPTY_ROW
    raw = cells[header.phone_index].strip() if header.phone_index < len(cells) else ""
    if not raw:
        return MISSING_PHONE
    phone = normalise_phone(raw)
    if len(raw) > 30 or not MOBILE.match(phone):
        return INVALID_PHONE
    params: dict[str, str] = {}
    for index, name in header.columns:
        value = cells[index].strip() if index < len(cells) else ""
        if len(value) > MAX_CELL:
            return VALUE_TOO_LONG
        params[name] = value
    return phone, params


@dataclass
class RowReport:
    """What became of a file's rows: accepted, refused (line, reason), duplicates merged."""

    rows_read: int = 0
    accepted: int = 0
    duplicates: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)
    refused_total: int = 0

    def refuse(self, line: int, reason: str, keep: int | None = None) -> None:
        """Count a refused row; keep its line unless `keep` lines are already kept."""
        self.refused_total += 1
        if keep is None or len(self.refused) < keep:
            self.refused.append((line, reason))

    def as_dict(self) -> dict[str, object]:
        """The report as the API answers it."""
        return {
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "refused": self.refused_total,
            "duplicates": self.duplicates,
            "refused_rows": [{"line": line, "reason": reason} for line, reason in self.refused],
        }
