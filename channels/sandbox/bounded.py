"""Bounded records: the sandbox keeps a recent window of what it saw and running counts of the rest.

A long `serve --demo` or a 100,000-person bench used to keep every message, push and DingTalk
task (420 MB after one 100,000-person run); each record now forgets its oldest entries past a
configured size, and totals are counted separately so `/_sandbox/counts` stays exact.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedDict(OrderedDict[K, V]):
    """A dict that forgets its least recently written entries past `maxlen` entries."""

    def __init__(self, maxlen: int) -> None:
        super().__init__()
        self.maxlen = max(1, maxlen)

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)  # a callee called again is kept, not evicted by its first call's age
        while len(self) > self.maxlen:
            self.popitem(last=False)
