"""One database read shared by every request that was already waiting when it began.

Why: each find-slot answer must reflect the calendar as committed when its request arrived, so it reads
the calendar generation (one row) before looking at the cached index. Under load, requests queue for
the search (``api/find_slot_lane.py``), and a read that began after a request arrived serves it as well
as one of its own would: it sees every commit that request could have known of (a client that commits a
claim and then asks sees its claim), and whatever it misses committed while the request was already on
its way, where no order among them is promised. The read itself is not the cheap part (a pool checkout,
a transaction or a round trip, SQLAlchemy's execution; ~0.4 ms of CPU on SQLite), so 16 queued
requests sharing it save about one read in every 16.

A caller that gives no arrival time (``since(None)``), or whose request arrived after the latest read
began, reads anew; every read, shared or not, is recorded with the time it began.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SharedRead:
    """``since(arrived)``: the value of a read begun at or after ``arrived`` (``time.monotonic()``),
    reading now if none has; ``fresh()``: a read begun now."""

    def __init__(self, read: Callable[[], int], clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._clock = clock
        self._latest: tuple[float, int] | None = None  # (began, value) of the read that began last
        self._lock = threading.Lock()
        self.reads = 0  # reads made (shared answers make none)

    def fresh(self) -> int:
        began = self._clock()
        value = self._read()
        with self._lock:
            self.reads += 1
            if self._latest is None or began >= self._latest[0]:
                self._latest = (began, value)
        return value

    def since(self, arrived: float | None) -> int:
        latest = self._latest  # one tuple, read atomically
        if arrived is not None and latest is not None and latest[0] >= arrived:
            return latest[1]
        return self.fresh()


__all__ = ["SharedRead"]
