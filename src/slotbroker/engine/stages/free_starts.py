"""Free starts per host row: the starts at which a row stays at or below its thresholds in every
table for a whole window, from the block grids (``Coarse``) where they can answer, else from every
event (``free_starts_exact``). The reach (``reach.py``) turns these per-host sets into per-site ones.

Kept apart from the reach: this module only reads ``StepTable``s and knows nothing of plans."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from slotbroker.engine.steps import StepTable

I64 = npt.NDArray[np.int64]
SHIFT = np.int64(1 << 36)  # row key stride for per-row running maxima (spans are < 2**36 s long)

Worth = Callable[[I64, I64, I64], npt.NDArray[np.bool_]]


def free_starts(
    specs: list[tuple[StepTable | None, I64]],
    rows: I64,
    lo: int,
    hi: int,
    d: int,
    worth: Worth | None = None,
) -> tuple[I64, I64, I64]:
    """Per row (``i`` indexes ``rows``), inclusive intervals ``[x, y]`` of starts in [lo, hi] at which
    every table's row stays at or below its threshold over [t, t + d): from the block grids where they
    can answer (``Coarse``), else from every event (``free_starts_exact``); both give the same
    intervals (a differential test holds them equal).

    ``worth(o, x, y)``, given a superset of the answer (intervals that contain the exact ones), may
    say which of them the caller has no use for; those are left out unread. The caller must only
    drop intervals whose every subset is useless to it."""
    coarse = Coarse.of(specs, rows, lo, hi, d)
    if coarse is None:
        return free_starts_exact(specs, rows, lo, hi, d)
    if worth is not None:
        o, x, y = coarse.loose()
        ok = x <= y
        use = np.zeros(ok.shape[0], dtype=bool)
        use[ok] = worth(o[ok], x[ok], y[ok])
        coarse = coarse.only(use)
    return coarse.exact()


def free_starts_blocks(
    specs: list[tuple[StepTable | None, I64]], rows: I64, lo: int, hi: int, d: int
) -> tuple[I64, I64, I64] | None:
    """``free_starts`` from the block grids alone, or None where they cannot answer (for tests)."""
    coarse = Coarse.of(specs, rows, lo, hi, d)
    return None if coarse is None else coarse.exact()


def _stretches(o: I64, a: I64, b: I64, n: int, lo: int, far: int) -> tuple[I64, I64, I64]:
    """The free stretches ``[fx, fy)`` of rows 0..n-1 in [lo, far) around the blocked spans
    ``(o, a, b)`` (any order, may overlap): before each span within its row, after the row's last span,
    and the whole range for rows without spans. Stretches may be empty (fx == fy)."""
    order = np.argsort(o * SHIFT + (a - lo))  # by row, then start (one int64 key: faster than lexsort)
    o, a, b = o[order], a[order], b[order]
    # covered-until: running max of span ends within each row (keys ordered by row, then end)
    cov = np.maximum.accumulate(o * SHIFT + (b - lo)) - o * SHIFT + lo
    first = np.ones(o.shape[0], dtype=bool)
    first[1:] = o[1:] != o[:-1]
    prev = np.empty(o.shape[0], dtype=np.int64)
    if o.shape[0]:
        prev[0] = lo
        prev[1:] = cov[:-1]
        prev[first] = lo
    last = np.ones(o.shape[0], dtype=bool)
    last[:-1] = o[1:] != o[:-1]
    bare = np.ones(n, dtype=bool)
    bare[o] = False
    bare_rows = np.flatnonzero(bare)
    fo = np.concatenate([o, o[last], bare_rows])
    fx = np.concatenate([prev, cov[last], np.full(bare_rows.shape[0], lo, np.int64)])
    fy = np.concatenate([a, np.full(int(last.sum()) + bare_rows.shape[0], far, np.int64)])
    return fo, fx, fy


def _dirty_runs(dirty: npt.NDArray[np.bool_]) -> tuple[I64, I64, I64]:
    """Runs of dirty blocks in a (blocks x rows) grid view: (row, first block, one past the last),
    ordered by row, then block. From flat positions in a row-major copy: ``nonzero`` on a 2-D array
    costs several times more than on a flat one."""
    nb = dirty.shape[0]
    m = np.ascontiguousarray(dirty.T).reshape(-1)  # row after row, each ``nb`` blocks
    before = np.empty_like(m)  # the previous block of the same row is dirty
    before[0] = False
    before[1:] = m[:-1]
    before[::nb] = False
    after = np.empty_like(m)  # the next block of the same row is dirty
    after[-1] = False
    after[:-1] = m[1:]
    after[nb - 1 :: nb] = False
    k0 = (m & ~before).nonzero()[0]  # each run's first and last block, in the same (row, block) order
    k1 = (m & ~after).nonzero()[0]
    return k0 // nb, k0 % nb, k1 % nb + 1


def _touches_dirty(view: tuple[int, int, npt.NDArray[np.bool_]], pos: I64, a: I64, b: I64) -> I64:
    """Which windows ``[a[i], b[i])`` (non-empty, inside the view) of row positions ``pos[i]`` meet a
    dirty block of the view (as indices): only those can hold a blocked span of its table, since a
    clean block stays at or below the threshold throughout."""
    t0, bs, dirty = view
    b0, b1 = (a - t0) // bs, (b - 1 - t0) // bs
    hit = np.zeros(pos.shape[0], dtype=bool)
    for k in range(int((b1 - b0).max(initial=-1)) + 1):
        blk = np.minimum(b0 + k, b1)
        hit |= dirty[blk, pos]
    return np.flatnonzero(hit)


def _clean_runs(t0: int, bs: int, dirty: npt.NDArray[np.bool_], lo: int, end: int) -> tuple[I64, I64, I64]:
    """The non-empty stretches of [lo, end) free of dirty blocks in one (blocks x rows) view, as
    ``(row, from, to)``: a run of clean blocks, its ends moved to ``lo`` / ``end`` where it reaches the
    view's first / last block (those blocks may reach outside [lo, end)). The same stretches as
    ``_stretches`` over the view's dirty runs, less the empty ones."""
    r, b0, b1 = _dirty_runs(~dirty)
    cx = np.where(b0 == 0, lo, t0 + b0 * bs)
    cy = np.where(b1 == dirty.shape[0], end, t0 + b1 * bs)
    return r, cx, cy


def _stretches_per_table(
    views: list[tuple[int, int, npt.NDArray[np.bool_]]], n: int, lo: int, end: int
) -> tuple[I64, I64, I64]:
    """The stretches free of every view's dirty blocks, for views of different block geometry: each
    view's dirty runs as spans, merged per row."""
    os, as_, bs_ = [], [], []
    for t0, bs, dirty in views:
        r0, b0, b1 = _dirty_runs(dirty)
        os.append(r0)
        as_.append(np.maximum(t0 + b0 * bs, lo))
        bs_.append(np.minimum(t0 + b1 * bs, end))
    return _stretches(np.concatenate(os), np.concatenate(as_), np.concatenate(bs_), n, lo, end)


def free_starts_exact(
    specs: list[tuple[StepTable | None, I64]], rows: I64, lo: int, hi: int, d: int
) -> tuple[I64, I64, I64]:
    """``free_starts`` from every event of every row in [lo, hi + d)."""
    n = rows.shape[0]
    os, as_, bs = [], [], []
    for table, thr in specs:
        if table is None:
            continue
        o, a, b = table.blocked_spans(rows, lo, hi + d, thr)
        os.append(o)
        as_.append(a)
        bs.append(b)
    o = np.concatenate(os) if os else np.zeros(0, np.int64)
    a = np.concatenate(as_) if as_ else np.zeros(0, np.int64)
    b = np.concatenate(bs) if bs else np.zeros(0, np.int64)
    if o.shape[0] == 0:
        return np.arange(n, dtype=np.int64), np.full(n, lo, np.int64), np.full(n, hi, np.int64)
    fo, fx, fy = _stretches(o, a, b, n, lo, hi + d)  # beyond the range: no constraint known, so free
    y = np.minimum(fy - d, hi)
    ok = fx <= y
    return fo[ok], fx[ok], y[ok]


@dataclass(frozen=True)
class Coarse:
    """Free stretches seen from the block-maximum grids, before any event is read.

    Why the exact answer follows from it: a block whose peak is at or below the threshold is free
    throughout, so the *dirty* blocks (peak above it) cover every blocked instant. A free stretch of
    length >= d > 2W (W the largest block) contains whole clean blocks of every grid except at most one
    partial block per grid at each end, so it contains exactly one stretch free of dirty blocks,
    ``[cx, cy)``, and equals it extended to the end of the last blocked span in [cx - W, cx) and to the
    start of the first one in [cy, cy + W): only the events of those windows are read. Dirty blocks
    at the two ends of the range may be dirty only outside it: no span inside the window then means
    the stretch reaches ``lo`` (or runs past the range). Without reading them, [cx - W, cy + W) is a
    superset (``loose``)."""

    live: list[tuple[StepTable, I64]]
    rows: I64
    lo: int
    hi: int
    d: int
    w: int
    fo: I64  # row positions (into rows)
    cx: I64
    cy: I64
    views: list[tuple[int, int, npt.NDArray[np.bool_]]]  # per live table: ``dirty_blocks`` of [lo, hi + d)

    @classmethod
    def of(
        cls, specs: list[tuple[StepTable | None, I64]], rows: I64, lo: int, hi: int, d: int
    ) -> Coarse | None:
        """None when a grid cannot answer (the range leaves it, or ``d`` is not longer than two blocks)."""
        live = [(t, thr) for t, thr in specs if t is not None]
        end = hi + d
        n = rows.shape[0]
        if not live or n == 0:
            return None
        views = [t.dirty_blocks(rows, lo, end, thr) for t, thr in live]
        if any(v is None for v in views):
            return None
        w = max(v[1] for v in views if v is not None)
        if d <= 2 * w:
            return None
        got = [v for v in views if v is not None]
        if all(v[0] == got[0][0] and v[1] == got[0][1] for v in got):
            # one block geometry (the usual case: grids are aligned to multiples of their block size):
            # a block is dirty for the row when it is dirty in any table, so one pass over one mask
            dirty = got[0][2]
            for v in got[1:]:
                dirty = dirty | v[2]
            fo, cx, cy = _clean_runs(got[0][0], got[0][1], dirty, lo, end)
        else:
            fo, cx, cy = _stretches_per_table(got, n, lo, end)
        keep = cy - cx + 2 * w >= d  # can reach d with at most W of events on each side
        return cls(live, rows, lo, hi, d, w, fo[keep], cx[keep], cy[keep], got)

    def only(self, mask: npt.NDArray[np.bool_]) -> Coarse:
        return replace(self, fo=self.fo[mask], cx=self.cx[mask], cy=self.cy[mask])

    def loose(self) -> tuple[I64, I64, I64]:
        """Per coarse stretch, an interval of starts containing the exact ones (empty where x > y),
        without reading events."""
        end = self.hi + self.d
        x = np.where(self.cx > self.lo, np.maximum(self.cx - self.w, self.lo), self.lo)
        ey = np.where(self.cy < end, self.cy + self.w, end)
        return self.fo, x, np.minimum(ey - self.d, self.hi)

    def exact(self) -> tuple[I64, I64, I64]:
        lo, w, end = self.lo, self.w, self.hi + self.d
        fo, cx, cy = self.fo, self.cx, self.cy
        ex, ey = cx.copy(), cy.copy()
        left = np.flatnonzero(cx > lo)
        right = np.flatnonzero(cy < end)
        # no blocked span in an edge window: the dirty block was dirty only before lo (left) or only
        # past the range (right); each table's spans in the windows pull the edges back in
        ex[left] = lo
        ey[right] = end
        nl = left.shape[0]
        if nl + right.shape[0]:
            # both sides' edge windows at once (one read per table): left ones first, then right ones
            pos = np.concatenate([fo[left], fo[right]])
            a = np.concatenate([np.maximum(cx[left] - w, lo), cy[right]])
            b = np.concatenate([cx[left], np.minimum(cy[right] + w, end)])
            for (table, thr), view in zip(self.live, self.views, strict=True):
                k = _touches_dirty(view, pos, a, b)
                if k.size == 0:
                    continue
                r = pos[k]
                q, qa, qb = table.blocked_spans(self.rows[r], a[k], b[k], thr[r])
                kq = k[q]
                on_left = kq < nl
                np.maximum.at(ex, left[kq[on_left]], qb[on_left])
                on_right = ~on_left
                np.minimum.at(ey, right[kq[on_right] - nl], qa[on_right])
        y = np.minimum(ey - self.d, self.hi)
        ok = ex <= y
        return fo[ok], ex[ok], y[ok]
