"""Process-level tuning shared by the long-running commands (serve, worker, sandbox)."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Move everything loaded so far (modules, jieba's dictionary, the directory) out of the GC's sight.

    A long-running process otherwise traverses those ~400,000 objects in every full collection
    (67 ms each here), and a broadcast, with a thousand requests in flight, triggers many: at
    100,000 subscribers this took the API from 36 to 27 CPU seconds and its p99 from 560 to 235 ms.
    """
    gc.collect()
    gc.freeze()
