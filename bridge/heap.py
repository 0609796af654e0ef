"""The garbage collector tuned for work that builds a large heap once and then allocates in bulk.

A bridge process holds a few hundred thousand objects that live as long as it does (modules, settings, RQ's
and pydantic's machinery), and every full collection scans all of them again. Two places paid for that:

- the web app, where under the intake's load a full collection came every second or two and each stopped
  the event loop for 30–55 ms, most of the intake's p99 (BENCHMARKS.md, webhook intake);
- the CommerceML import job, which keeps a chunk of a few thousand records' updates alive between two
  stagings: enough survivors for a full collection every few thousand records, 150–250 ms each, about a
  third of the whole job (BENCHMARKS.md, 1C exchange).

``gc.freeze`` moves what exists out of the collector's sight; the young generation's threshold goes up, so
objects that die by reference counting (nearly all) are not rescanned every 700 allocations. Cyclic garbage
still goes soon. Both are undone on the way out, and only the outermost of nested uses (a test process runs
the app and the jobs at once) changes anything.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

YOUNG_THRESHOLD = 10_000

_lock = threading.Lock()
_depth = 0


@contextlib.contextmanager
def settled_heap(*, collect: bool = True) -> Iterator[None]:
    """Freeze the heap and raise the young threshold while the block runs.

    ``collect``: a full collection first, so no garbage of the start-up is kept out of reach for the lifetime
    of a server; a job that unfreezes within seconds skips it (it costs as much as the collections it saves).
    """
    global _depth
    with _lock:
        _depth += 1
        outermost = _depth == 1
        thresholds = gc.get_threshold()
        if outermost:
            if collect:
                gc.collect()
            gc.freeze()
            gc.set_threshold(YOUNG_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if outermost:
                gc.set_threshold(*thresholds)
                gc.unfreeze()
