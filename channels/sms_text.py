"""Chinese SMS text rules, in one place for both SMS providers (Alibaba Cloud API and CMPP).

A message is the signature in 【】 plus the text, plus `回T退订` for subscription notices (not for
staff or emergency messages). Up to 70 characters (signature included) is one message; longer
text is carried and billed in parts of 67 characters.
"""

from __future__ import annotations

from dataclasses import dataclass

from channels.base import MessageKind

SINGLE_LIMIT = 70
PART_LIMIT = 67
OPT_OUT_HINT = "回T退订"
UNSUBSCRIBE_WORDS = frozenset({"T", "TD", "退订", "取消"})


@dataclass(frozen=True)
class SmsText:
    """The full text as the phone shows it and how many billed parts it takes."""

    text: str
    parts: int

    @property
    def length(self) -> int:
        """Characters, signature and hint included."""
        return len(self.text)


def count_parts(text: str) -> int:
    """Billed parts for a full SMS text: 1 up to 70 characters, else ceil(len / 67)."""
    length = len(text)
    if length <= SINGLE_LIMIT:
        return 1
    return -(-length // PART_LIMIT)


def compose(body: str, signature: str, kind: MessageKind = MessageKind.SUBSCRIPTION) -> SmsText:
    """Signature in 【】 + body (+ opt-out hint for subscription notices)."""
    signature = signature.strip().strip("【】")
    text = f"【{signature}】{body.strip()}" if signature else body.strip()
    if kind == MessageKind.SUBSCRIPTION and not text.endswith(OPT_OUT_HINT):
        text = f"{text}{OPT_OUT_HINT}"
    return SmsText(text=text, parts=count_parts(text))


def split_parts(text: str) -> list[str]:
    """The text cut into the pieces a carrier link sends (one piece when it fits in 70)."""
    if len(text) <= SINGLE_LIMIT:
        return [text]
    return [text[i : i + PART_LIMIT] for i in range(0, len(text), PART_LIMIT)]


def is_unsubscribe(reply: str) -> bool:
    """True when an SMS reply asks to stop (T, TD, 退订, 取消 ... any case, spaces ignored)."""
    return reply.strip().replace(" ", "").upper() in UNSUBSCRIBE_WORDS
