"""How a server process keeps the garbage collector off the find-slot path.

Why: CPython's full collection walks every tracked object that is not frozen, with every thread
stopped. Start-up's objects are frozen by the lifespan (``background.py``), but the calendar index
(built on the first find-slot request, and again whenever another process's commit cannot be replayed)
and what the first requests build lazily are ~50k more objects; measured in the server at 16 clients
(docs/performance.md, "Issue 18: the heap off the find-slot path"), a full collection then took
23-70 ms, about one every 250-500 answers, each one holding up the whole queue of 16.

So, after each search that built a new index (``CalendarCache.rebuilds`` moved), the lane's thread
(``api/find_slot_lane.py``) runs one full collection and freezes what survives: the index and the
warmed-up app stay out of every later collection, and nothing collectable is frozen. What was alive at
a freeze and later became cyclic garbage (an in-flight request's frames, say) would never be collected
while frozen, so each freeze first unfreezes: such garbage lives at most until the next rebuild (an
index once replaced is freed by reference counting at once: it holds no cycles, which
tests/api/test_heap.py holds). The collection then walks the whole heap, once per rebuild, which costs
more itself.

``SLOTBROKER_GC_FREEZE=0`` turns that off; ``SLOTBROKER_GC_THRESHOLD`` (three integers, as
``gc.set_threshold`` takes them) sets the collector's thresholds while the app serves (restored at
shutdown).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable


class HeapPolicy:
    """``after_search``: run in the lane after each search; freezes the heap when ``built()`` (a count
    of index builds) has moved since the last freeze."""

    def __init__(
        self, built: Callable[[], int], *, freeze: bool = True, threshold: tuple[int, int, int] | None = None
    ) -> None:
        self._built = built
        self.freeze = freeze
        self.threshold = threshold
        self._frozen_at: int | None = None
        self._lock = threading.Lock()
        self._saved: tuple[int, int, int] | None = None
        self._serving = False
        self.freezes = 0

    def start(self) -> None:
        """At start-up, after the lifespan's freeze: the thresholds (the previous ones kept for
        ``stop``); freezes from now on, as the lifespan unfreezes everything at shutdown."""
        if self.threshold is not None:
            self._saved = gc.get_threshold()
            gc.set_threshold(*self.threshold)
        self._serving = True

    def stop(self) -> None:
        self._serving = False
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def after_search(self) -> None:
        if not (self.freeze and self._serving):
            return
        built = self._built()
        if built == self._frozen_at:  # the common case: no lock, no collection
            return
        with self._lock:
            if built == self._frozen_at:
                return
            self._frozen_at = built
            gc.unfreeze()  # what an earlier freeze kept and has since become garbage is collected too
            gc.collect()
            gc.freeze()
            self.freezes += 1


__all__ = ["HeapPolicy"]
