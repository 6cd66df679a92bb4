"""Process-level tuning shared by the long-running commands (serve, worker, sandbox)."""

from __future__ import annotations

import gc

# Young-generation collections every 50,000 net allocations instead of 700: a broadcast keeps
# a thousand requests and their objects alive at once, so each collection found little garbage
# and promoted the rest, which set off the costly full collections. Garbage without cycles is
# freed by reference counting as before; memory stayed the same in the benchmarks.
YOUNG_THRESHOLD = 50_000


def tune_gc_after_startup() -> None:
    """Freeze what start-up loaded (modules, jieba's dictionary, the directory) and raise the young threshold.

    A long-running process otherwise traverses those ~400,000 objects in every full collection
    (67 ms each here), and a broadcast triggers many. At 100,000 subscribers, freezing took the
    API from 36 to 27 CPU seconds (p99 560 to 235 ms) and the sandbox from 44 to 38; the higher
    young threshold then took the sandbox to 29 s and the run from 82 s to 74 s.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 20)
