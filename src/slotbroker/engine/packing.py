"""Packing instances onto the hosts of one site for one window.

``pack`` is exact (depth-first with pruning) when asked and the instance count is small, and
best-fit-decreasing otherwise. Two symmetry cuts keep the exact search small: instances of one
component take hosts in non-decreasing order, and among hosts that look identical right now (same
residual and same eligibility: Nomad's node classes, but dynamic) only the first is tried.
"""

from __future__ import annotations

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


def _size(it: Item, total: I64) -> float:
    scale = np.maximum(total, 1)
    return float((it.demand / scale).max(initial=0.0))  # 0 for an item that needs nothing


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
    total = free.sum(axis=0) if free.size else np.zeros(free.shape[1], dtype=np.int64)
    need = sum((it.demand * it.count for it in items), np.zeros(free.shape[1], dtype=np.int64))
    if (need > total).any():
        return None
    if len(items) == 1 and items[0].count == 1:  # first host in order that fits (what both paths do)
        it = items[0]
        fits = it.eligible & (free >= it.demand).all(axis=1)
        for h in order:
            if fits[h]:
                return {it.comp: [h]}
        return None
    items = sorted(items, key=lambda it: (-_size(it, total), it.comp))
    if exact:
        return _exact(items, free.copy(), order, budget)
    return _best_fit(items, free.copy(), order)


def _best_fit(items: list[Item], res: I64, order: list[int]) -> dict[int, list[int]] | None:
    rank = np.empty(len(order), dtype=np.int64)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
    scale = np.maximum(res.max(axis=0), 1)
    out: dict[int, list[int]] = {}
    for it in items:
        hosts: list[int] = []
        for _ in range(it.count):
            fits = it.eligible & (res >= it.demand).all(axis=1)
            cand = np.nonzero(fits)[0]
            if cand.size == 0:
                return None
            left = ((res[cand] - it.demand) / scale).sum(axis=1)
            best = cand[np.lexsort((rank[cand], left))[0]]
            res[best] -= it.demand
            hosts.append(int(best))
        out[it.comp] = hosts
    return out


def _exact(items: list[Item], res: I64, order: list[int], budget: int) -> dict[int, list[int]] | None:
    seq = [(k, it) for k, it in enumerate(items) for _ in range(it.count)]
    rest = np.zeros((len(seq) + 1, res.shape[1]), dtype=np.int64)
    for i in range(len(seq) - 1, -1, -1):
        rest[i] = rest[i + 1] + seq[i][1].demand
    chosen: list[int] = []
    pos = {h: i for i, h in enumerate(order)}
    elig = np.array([it.eligible for it in items]) if items else np.zeros((0, res.shape[0]), dtype=bool)
    nodes = 0

    def dfs(i: int) -> bool:
        nonlocal nodes
        if i == len(seq):
            return True
        nodes += 1
        if nodes > budget or (rest[i] > res.sum(axis=0)).any():
            return False
        k, it = seq[i]
        floor = pos[chosen[-1]] if i > 0 and seq[i - 1][0] == k else 0
        # which hosts take this instance now: ``res`` is back to this state after every child
        fits = (it.eligible & (res >= it.demand).all(axis=1)).tolist()
        tried: set[tuple[bytes, bytes]] = set()
        for h in order[floor:]:
            if not fits[h]:
                continue
            sig = (res[h].tobytes(), elig[k:, h].tobytes())
            if sig in tried:
                continue
            tried.add(sig)
            res[h] -= it.demand
            chosen.append(h)
            if dfs(i + 1):
                return True
            chosen.pop()
            res[h] += it.demand
        return False

    if not dfs(0):
        return None
    out: dict[int, list[int]] = {}
    for (_, it), h in zip(seq, chosen, strict=True):
        out.setdefault(it.comp, []).append(h)
    return out
