"""Mainland mobile numbers: one function turns any way of writing one into the same 11 ASCII digits.

Used by everything that reads a number from a person, a file or a provider (directory, subscribers,
verification codes, opt-out replies, audiences), so `１３８…`, `١٣٨…`, `+86 138-…` and `0086138…`
are one number, not four.
"""

from __future__ import annotations

import re
import unicodedata

MOBILE_RE = re.compile(r"^1[3-9][0-9]{9}$", re.ASCII)
SEPARATORS = frozenset(" \t-.()‐‑‒–—")
COUNTRY_PREFIXES = ("0086", "86")
LONGEST_INPUT = 40


def normalise_mobile(raw: str | None) -> str | None:
    """The number as 11 ASCII digits (`1[3-9]` + 9), or None when it is not a mainland mobile.

    NFKC first (full-width digits and spaces), then decimal digits of any script, then spaces,
    dashes, dots and brackets dropped, then one `+86`, `0086` or `86` prefix removed.
    """
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if not text or len(text) > LONGEST_INPUT:
        return None
    plus = text.startswith("+")
    digits = []
    for char in text[1:] if plus else text:
        if char in SEPARATORS or char.isspace():
            continue
        value = unicodedata.decimal(char, None)
        if value is None:
            return None
        digits.append(str(value))
    number = "".join(digits)
    if plus and not number.startswith("86"):
        return None  # another country's number
    for prefix in COUNTRY_PREFIXES:
        if number.startswith(prefix) and len(number) == len(prefix) + 11:
            number = number[len(prefix) :]
            break
    return number if MOBILE_RE.match(number) else None
