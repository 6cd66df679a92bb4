"""Text we accept: no control characters (tab and newline excepted), no lone surrogates, no bidi overrides in titles.

Use these types for every text field of an input schema or web form (`Text`, `MultilineText`,
`TitleText`); a violation is a 422 like any other validation error. URLs (path and query) are
checked once for every route by `middleware.ControlCharacterGuard`, with `control_characters`.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

# C0 controls except tab and LF, DEL, C1 controls, lone surrogates (from JSON "\ud800"), U+FFFE/U+FFFF.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# Explicit direction embeddings, overrides and isolates: they can make a title read as something else.
_BIDI_CONTROL = re.compile("[\u202a-\u202e\u2066-\u2069]")
CONTROL_MESSAGE = "不能包含控制字符 / must not contain control characters"
BIDI_MESSAGE = "标题不能包含双向文本控制字符 / must not contain bidirectional override characters"


def control_characters(text: str) -> list[str]:
    """The characters of `text` we refuse anywhere (as `U+XXXX` codes, for error details)."""
    return sorted({f"U+{ord(ch):04X}" for ch in _CONTROL.findall(text)})


def no_control_characters(value: str) -> str:
    """A validator: the value unchanged, or ValueError when it holds a control character."""
    if _CONTROL.search(value):
        raise ValueError(f"{CONTROL_MESSAGE}: {', '.join(control_characters(value))}")
    return value


def multiline(value: str) -> str:
    """A validator for text from a textarea: CRLF and CR become LF, then no other control character."""
    return no_control_characters(value.replace("\r\n", "\n").replace("\r", "\n"))


def no_bidi_controls(value: str) -> str:
    """A validator for titles: refuses U+202A–U+202E and U+2066–U+2069 besides control characters."""
    no_control_characters(value)
    if _BIDI_CONTROL.search(value):
        raise ValueError(BIDI_MESSAGE)
    return value


Text = Annotated[str, AfterValidator(no_control_characters)]
MultilineText = Annotated[str, AfterValidator(multiline)]
TitleText = Annotated[str, AfterValidator(no_bidi_controls)]
