"""One escaping helper per place a value goes (besides HTML, which Jinja autoescapes):

- `script_json`: data inside a `<script>` element (also the Jinja filters `script_json` and `tojson`);
- `xml_text`: text going into an XML feed (drops characters XML 1.0 cannot carry);
- `spreadsheet_cell`: a cell of a CSV or XLSX export (a formula is shown, never run);
- SQL LIKE patterns: `contacts.like.like_escape` (it lives below this package so `contacts/` can use it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from markupsafe import Markup

# `<`, `>` and `&` cannot end the script or start a comment; U+2028/9 end a line in older JavaScript.
_SCRIPT_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)
# XML 1.0 allows tab, LF, CR, U+0020–U+D7FF, U+E000–U+FFFD and U+10000–U+10FFFF; nothing else.
_XML_INVALID = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# A spreadsheet treats a cell starting with these as a formula (tab and CR too, in some programs).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# A signed number or phone (+86 570 301-2345, -5): no function can hide in it, and a `'` would spoil re-import.
_PLAIN_NUMBER = re.compile(r"[+-][0-9][0-9 ()\-]*")


def script_json(value: Any) -> Markup:
    """JSON safe to place inside a `<script>` element (or a single-quoted attribute)."""
    return Markup(json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_SCRIPT_ESCAPES))  # noqa: S704


def xml_text(value: str) -> str:
    """The text with every character XML 1.0 cannot carry removed (NUL, other C0 controls, U+FFFE/FFFF)."""
    return _XML_INVALID.sub("", value)


def spreadsheet_cell(value: Any) -> Any:
    """A cell value a spreadsheet shows as text: a leading `=`, `+`, `-`, `@`, tab or CR gets a `'` before it."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def spreadsheet_row(values: Iterable[Any]) -> list[Any]:
    """A CSV/XLSX row with every cell through `spreadsheet_cell`."""
    return [spreadsheet_cell(v) for v in values]


def spreadsheet_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A csv.DictWriter row with every value through `spreadsheet_cell`."""
    return {k: spreadsheet_cell(v) for k, v in row.items()}
