"""Bounded integer types for every id, offset, limit and page a request may carry (path, query or body).

Unbounded integers reached the database: 20-digit ids overflowed the driver (a 500 on SQLite and
PostgreSQL) and 10-digit ones overflowed PostgreSQL's `integer`. Each type below is an `Annotated`
int usable as a path/query parameter or a body field; `tests/govconnect/test_integer_bounds.py`
checks that no route takes an integer without a maximum.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Interval

# Every id column is an `integer` on PostgreSQL (and SQLite accepts the same range).
DB_INT_MAX = 2_147_483_647

RowId = Annotated[int, Interval(ge=1, le=DB_INT_MAX)]
"""A database row id (contacts, departments, subscribers)."""

Offset = Annotated[int, Interval(ge=0, le=DB_INT_MAX)]
"""How many rows to skip."""

PageNumber = Annotated[int, Interval(ge=1, le=1_000_000)]
"""A 1-based page number."""

SortOrder = Annotated[int, Interval(ge=0, le=100_000)]
"""A position in a hand-ordered list."""
