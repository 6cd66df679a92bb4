"""SQL LIKE patterns built from data: the one escaping helper (`%`, `_` and the escape character itself)."""

from __future__ import annotations

from typing import Any

LIKE_ESCAPE = "\\"


def like_escape(value: str) -> str:
    """`value` as a LIKE pattern that matches only itself; use with `escape=LIKE_ESCAPE`."""
    return value.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")


def starts_with(column: Any, prefix: str) -> Any:
    """`column LIKE 'prefix%' ESCAPE '\\'` with the prefix taken literally (SQLite and PostgreSQL alike)."""
    return column.like(like_escape(prefix) + "%", escape=LIKE_ESCAPE)


def contains(column: Any, text: str) -> Any:
    """`column LIKE '%text%' ESCAPE '\\'` with the text taken literally."""
    return column.like("%" + like_escape(text) + "%", escape=LIKE_ESCAPE)
