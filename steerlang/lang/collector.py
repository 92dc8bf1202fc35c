"""Python's cyclic garbage collector held off while the front end runs over one recipe.

Why: parsing allocates a token per word and a node per grammar rule, and checking and
formatting walk that tree and allocate more, freeing almost nothing until they return. The
collector counts allocations, so it keeps starting passes that walk the growing tree again and
find nothing to free (the syntax tree has no reference cycles; it is freed by reference
counting once dropped). On a 900 KB recipe of deeply nested `not` (input 54625 of
`benchmarks/fuzz_recipes.py --seed 0`) those passes were more than half of the time. Whatever
the front end leaves unreachable in a cycle is collected as usual afterwards.

Nested and concurrent holders (the language server checks off its event loop) share one
pause: the first holder disables the collector, the last one gives it back as it found it.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()
_holders = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """The collector off for the `with` block (and any holder's block overlapping it)."""
    global _holders, _was_enabled
    with _LOCK:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _LOCK:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
