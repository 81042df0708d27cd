"""Packing instances onto the hosts of one site for one window.

``pack`` is exact (depth-first with pruning) when asked and the instance count is small, and
best-fit-decreasing otherwise. Two symmetry cuts keep the exact search small: instances of one
component take hosts in non-decreasing order, and among hosts that look identical right now (same
residual and same eligibility: Nomad's node classes, but dynamic) only the first is tried.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
BoolArr = npt.NDArray[np.bool_]
INT64_MAX = int(np.iinfo(np.int64).max)


@dataclass(frozen=True)
class Item:
    comp: int
    count: int
    demand: I64  # per class
    eligible: BoolArr  # per local host


def _size(demand: list[int], total: list[int]) -> float:
    """An item's largest share of what the hosts have free together (0 for one that needs nothing),
    in floats as numpy divides int64 arrays (each side to a double first)."""
    return max([0.0, *(float(d) / float(max(t, 1)) for d, t in zip(demand, total, strict=True))])


def usable_free(free: I64) -> I64:
    """What packing counts a host's free capacity as: an overbooked class (negative free) only
    matters to items that need it, and amounts are capped so sums over the hosts cannot wrap (no
    item needs that much of one host)."""
    free = np.maximum(free, 0)
    if free.shape[0] > 1:
        free = np.minimum(free, INT64_MAX // free.shape[0])
    return free


def pack(
    items: list[Item], free: I64, order: list[int], exact: bool, budget: int = 20_000
) -> dict[int, list[int]] | None:
    """Assign every instance to a local host index so no host's free capacity goes negative.

    ``free`` is (hosts x classes) free over the whole window; ``order`` is the policy's host
    preference. Returns comp -> host indices (one per instance) or None."""
    free = usable_free(free)
    # a handful of items and classes: sums and shares in Python, not a numpy call each
    total: list[int] = free.sum(axis=0).tolist()
    dem: list[list[int]] = [it.demand.tolist() for it in items]
    need = [sum(d[j] * it.count for d, it in zip(dem, items, strict=True)) for j in range(len(total))]
    if any(n > t for n, t in zip(need, total, strict=True)):
        return None
    if len(items) == 1 and items[0].count == 1:  # first host in order that fits (what both paths do)
        it = items[0]
        fits = it.eligible & (free >= it.demand).all(axis=1)
        for h in order:
            if fits[h]:
                return {it.comp: [h]}
        return None
    ranked = sorted(zip(items, dem, strict=True), key=lambda x: (-_size(x[1], total), x[0].comp))
    items = [it for it, _ in ranked]
    if exact:
        return _exact(items, free, order, budget)
    return _best_fit(items, free.copy(), order)


def _best_fit(items: list[Item], res: I64, order: list[int]) -> dict[int, list[int]] | None:
    """Each instance on the host it fits that it leaves least room on (``_left``: the residual's
    shares of the largest free amounts), ties by ``order``. Taking an instance changes only its
    host's residual, so each item's hosts are ranked once in a heap and only the host taken is
    ranked again: the same choice as ranking every host for every instance."""
    rank = np.empty(len(order), dtype=np.int64)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
    scale = np.maximum(res.max(axis=0, initial=0), 1)  # (no hosts: nothing fits, no error)
    ranks: list[int] = rank.tolist()
    rows: list[list[int]] = res.tolist()  # a host's residual changes per instance: lists, not numpy calls
    out: dict[int, list[int]] = {}
    for it in items:
        fits = np.flatnonzero(it.eligible & (res >= it.demand).all(axis=1))
        left: list[float] = _left(res[fits], it.demand, scale).tolist()
        heap = [(v, ranks[h], h) for v, h in zip(left, fits.tolist(), strict=True)]
        heapq.heapify(heap)
        dem: list[int] = it.demand.tolist()
        hosts: list[int] = []
        for _ in range(it.count):
            if not heap:
                return None
            _, r, best = heapq.heappop(heap)
            row = rows[best] = [a - b for a, b in zip(rows[best], dem, strict=True)]
            if all(a >= b for a, b in zip(row, dem, strict=True)):  # (it was eligible to be taken)
                again = _left(np.array([row], dtype=np.int64), it.demand, scale)
                heapq.heappush(heap, (float(again[0]), r, best))
            hosts.append(best)
        if hosts:  # the next item's ranking reads the residuals
            res[hosts] = [rows[h] for h in hosts]
        out[it.comp] = hosts
    return out


def _left(res: I64, demand: I64, scale: I64) -> npt.NDArray[np.float64]:
    """Per host row of ``res``: the room an instance of ``demand`` would leave, in shares of
    ``scale`` summed over the classes (row by row, the same sum for a row alone or among others)."""
    out: npt.NDArray[np.float64] = ((res - demand) / scale).sum(axis=1)
    return out


def _exact(items: list[Item], free: I64, order: list[int], budget: int) -> dict[int, list[int]] | None:
    """Depth-first over instances (items in the given order, each item's instances together), hosts
    in ``order``. Runs on Python lists: a few instances over one site's hosts take a handful of nodes,
    and per node numpy would spend more on its calls than on the work. ``free`` is not modified."""
    seq = [k for k, it in enumerate(items) for _ in range(it.count)]
    dem = [it.demand.tolist() for it in items]
    res: list[list[int]] = free.tolist()
    elig: list[list[bool]] = [it.eligible.tolist() for it in items]
    # rest[i]: what the instances from i on need together; left: what the hosts have free together
    rest = [[0] * free.shape[1]]
    for k in reversed(seq):
        rest.append([a + b for a, b in zip(rest[-1], dem[k], strict=True)])
    rest.reverse()
    left = [sum(col) for col in zip(*res, strict=True)] if res else [0] * free.shape[1]
    chosen: list[int] = []
    pos = {h: i for i, h in enumerate(order)}
    nodes = 0

    def dfs(i: int) -> bool:
        nonlocal nodes
        if i == len(seq):
            return True
        nodes += 1
        if nodes > budget or any(r > f for r, f in zip(rest[i], left, strict=True)):
            return False
        k = seq[i]
        d, ok = dem[k], elig[k]
        floor = pos[chosen[-1]] if i > 0 and seq[i - 1] == k else 0
        # hosts that look alike now (same residual, same eligibility for what is left) are tried once
        tried: set[tuple[tuple[int, ...], tuple[bool, ...]]] = set()
        for h in order[floor:]:
            r = res[h]
            if not ok[h] or any(a < b for a, b in zip(r, d, strict=True)):
                continue
            sig = (tuple(r), tuple(e[h] for e in elig[k:]))
            if sig in tried:
                continue
            tried.add(sig)
            res[h] = [a - b for a, b in zip(r, d, strict=True)]
            left[:] = [a - b for a, b in zip(left, d, strict=True)]
            chosen.append(h)
            if dfs(i + 1):
                return True
            chosen.pop()
            res[h] = r
            left[:] = [a + b for a, b in zip(left, d, strict=True)]
        return False

    if not dfs(0):
        return None
    out: dict[int, list[int]] = {}
    for k, h in zip(seq, chosen, strict=True):
        out.setdefault(items[k].comp, []).append(h)
    return out
