"""Interval arithmetic over sorted numpy arrays: coverage by weighted groups, unions, overlaps."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]


def group_coverage(group: I64, weight: I64, need: int, x: I64, y: I64) -> tuple[I64, I64, I64]:
    """Per group, the times at which its rows with ``t`` in ``[x, y]`` weigh ``need`` or more in total:
    (group, starts, ends) of half-open intervals, disjoint within a group, ordered by group."""
    if x.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    t = np.concatenate([x, y + 1])
    dl = np.concatenate([weight, -weight])
    g = np.concatenate([group, group])
    order = np.lexsort((dl > 0, t, g))  # per group in time order, removals before additions
    t, g, cs = t[order], g[order], np.cumsum(dl[order])  # each group's deltas sum to 0: restarts per group
    good = np.flatnonzero(cs >= need)  # never a group's last event (its sum is back to 0 < need)
    gs, ge, gg = t[good], t[good + 1], g[good]
    keep = gs < ge
    return gg[keep], gs[keep], ge[keep]


def union(starts: I64, ends: I64) -> tuple[I64, I64]:
    """Half-open intervals merged into disjoint sorted ones."""
    if starts.shape[0] == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    gs, ge = starts[order], np.maximum.accumulate(ends[order])
    new = np.flatnonzero(gs[1:] > ge[:-1])
    return gs[np.concatenate([[0], new + 1])], ge[np.concatenate([new, [gs.shape[0] - 1]])]


def coverage(group: I64, weight: I64, need: int, x: I64, y: I64) -> tuple[I64, I64]:
    """Times at which some group's rows with ``t`` in ``[x, y]`` weigh ``need`` or more in total:
    disjoint sorted intervals ``[starts, ends)``."""
    _, gs, ge = group_coverage(group, weight, need, x, y)
    return union(gs, ge)


def at_least(starts: I64, ends: I64, need: int) -> tuple[I64, I64]:
    """Where at least ``need`` of the half-open intervals overlap: disjoint sorted intervals."""
    if starts.shape[0] < need or need <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    t = np.concatenate([starts, ends])
    dl = np.concatenate([np.ones(starts.shape[0], np.int64), -np.ones(ends.shape[0], np.int64)])
    order = np.lexsort((dl, t))  # removals before additions at one instant: half-open intervals
    t, cs = t[order], np.cumsum(dl[order])
    good = np.flatnonzero(cs[:-1] >= need)
    gs, ge = t[good], t[good + 1]
    keep = gs < ge
    return union(gs[keep], ge[keep])
