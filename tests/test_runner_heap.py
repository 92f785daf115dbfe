"""A stage process settles its heap before it consumes (msgd.runner.settle_heap): what it holds
after startup is frozen out of the collector's full passes; garbage of the startup is collected first."""

from __future__ import annotations

import gc
import weakref
from typing import Any


class _Node:
    def __init__(self) -> None:
        self.me: Any = self  # a reference cycle: only the collector frees it


def test_settle_heap_collects_startup_garbage_and_freezes_what_is_kept() -> None:
    from msgd.runner import settle_heap

    kept = _Node()
    dropped = weakref.ref(_Node())  # garbage already: nothing refers to it but itself
    try:
        settle_heap()
        assert dropped() is None, "garbage made at startup is collected, not frozen"
        assert gc.get_freeze_count() > 0
        assert not any(o is kept for o in gc.get_objects()), "what the process keeps is out of the collector's sight"
        after = _Node()
        assert any(o is after for o in gc.get_objects()), "what is made later is collected as usual"
    finally:
        gc.unfreeze()
