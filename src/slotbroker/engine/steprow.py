"""One row of a ``StepTable`` on its own: its sorted event keys ``ks`` and the level from each event on
(``ls``), as the table stores them (keys ``row * STRIDE + time``; ``base`` is ``row * STRIDE``).

The table's vectorised queries spread many rows over one array; these answer for one row with a few
numpy calls, for callers that ask one row at a time (the trace replay's pool, a single port). Same
segments and rules as the vectorised paths; a property test (tests/engine/test_batch_ops.py) holds
them equal.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
NONE_T = np.int64(2**62)  # "no time" inside searches (``steps`` re-exports it)


def _i64(x: object) -> I64:
    return np.asarray(x, dtype=np.int64)


def merge_row(ks: I64, ls: I64, keys: I64, deltas: I64) -> tuple[I64, I64]:
    """One row's events ``(ks, ls)`` plus ``deltas`` at ``keys``, as the minimal step function: the
    row's levels become deltas, all deltas are summed per key and prefix-summed back into levels, and
    events that do not change the level are dropped (the form ``StepTable.add`` keeps)."""
    old = np.empty_like(ls)
    if ls.shape[0]:
        old[0] = ls[0]
        np.subtract(ls[1:], ls[:-1], out=old[1:])
    allk = np.concatenate([ks, keys])
    order = np.argsort(allk, kind="stable")
    allk = allk[order]
    level = np.cumsum(np.concatenate([old, deltas])[order])
    last = np.ones(allk.shape[0], dtype=bool)
    last[:-1] = allk[1:] != allk[:-1]
    allk, level = allk[last], level[last]
    keep = np.ones(allk.shape[0], dtype=bool)
    keep[1:] = level[1:] != level[:-1]
    if allk.shape[0]:
        keep[0] = level[0] != 0
    return _i64(allk[keep]), _i64(level[keep])


def row_peak(ks: I64, ls: I64, base: int, start: int, end: int) -> int:
    """``StepTable._peak_flat`` for one row's own events: the level in force at ``start`` and every
    level that starts inside [start, end). Four numpy calls instead of twenty."""
    i = int(ks.searchsorted(base + start, side="right")) - 1
    j = int(ks.searchsorted(base + end, side="left"))
    lead = int(ls[i]) if i >= 0 else 0
    return max(lead, int(ls[i + 1 : j].max())) if j > i + 1 else lead


def row_fit(ks: I64, ls: I64, base: int, start: int, duration: int, threshold: int, latest: int) -> int:
    """``StepTable._fits_flat`` for one row's own events: the same rule -- a start is ``start`` or the
    first instant of a stretch at or below ``threshold``, and it fits when that stretch lasts
    ``duration`` -- over the same events (the level in force at ``start``, then each event before
    ``latest + duration``). The common answers (``start`` itself; blocked throughout) come first."""
    if threshold < 0 or start > latest:
        return int(NONE_T)
    i = int(ks.searchsorted(base + start, side="right")) - 1
    hi = int(ks.searchsorted(base + latest + duration, side="left"))
    lead_free = (int(ls[i]) if i >= 0 else 0) <= threshold
    times = ks[i + 1 : hi]
    blocked = ls[i + 1 : hi] > threshold
    b = blocked.nonzero()[0]
    if lead_free and (b.shape[0] == 0 or int(times[b[0]]) - base - start >= duration):
        return start
    if b.shape[0] == blocked.shape[0]:
        return int(NONE_T)  # no free stretch after start's own
    opens = ~blocked  # a free event right after a blocked one (or a blocked start) opens a stretch
    opens[0] &= not lead_free
    opens[1:] &= blocked[:-1]
    rs = opens.nonzero()[0]
    t = times[rs] - base
    if b.shape[0] == 0:
        return int(t[0]) if int(t[0]) <= latest else int(NONE_T)
    k = b.searchsorted(rs)  # the blocked event that ends each stretch, if any
    stop = np.where(k < b.shape[0], times[b[np.minimum(k, b.shape[0] - 1)]] - base, NONE_T)
    ok = ((t <= latest) & (stop - t >= duration)).nonzero()[0]
    return int(t[ok[0]]) if ok.shape[0] else int(NONE_T)
