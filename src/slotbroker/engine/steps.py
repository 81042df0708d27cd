"""``StepTable``: committed usage of one resource class over time, for many providers at once.

Each provider is a *row*; a row's usage is a step function stored as sorted event times and the level
from each event until the next (level 0 before the first and after the last). All rows live in two flat
arrays keyed by ``row * STRIDE + time``, so one ``searchsorted`` answers a question for every row at
once: that is what makes "peak usage of 1,000 hosts over [s, e)" a handful of numpy calls instead of a
Python loop. Updates touch one row and are merged into the flat arrays lazily, on the next query.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
STRIDE = 1 << 34  # times must lie in [0, STRIDE): seconds since the epoch up to year 2514


def _i64(x: object) -> I64:
    return np.asarray(x, dtype=np.int64)


class StepTable:
    """Usage step functions for ``n_rows`` providers of one resource class."""

    def __init__(self, n_rows: int, keys: I64 | None = None, levels: I64 | None = None) -> None:
        self.n_rows = n_rows
        self._keys: I64 = _i64([]) if keys is None else keys
        self._levels: I64 = _i64([]) if levels is None else levels
        self._dirty: dict[int, tuple[I64, I64]] = {}
        self._dec: I64 | None = None

    @classmethod
    def build(cls, n_rows: int, rows: I64, start: I64, end: I64, amount: I64) -> StepTable:
        """Build every row at once: sort all +amount/-amount events by (row, time) and take a prefix
        sum. Each row's events sum to zero, so the global prefix sum restarts at 0 on every row."""
        keep = end > start
        rows, start, end, amount = rows[keep], start[keep], end[keep], amount[keep]
        if rows.size and (start.min() < 0 or end.max() >= STRIDE):
            raise ValueError("allocation times must lie in [0, 2**34) seconds")
        base = rows * STRIDE
        keys = np.concatenate([base + start, base + end])
        deltas = np.concatenate([amount, -amount])
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        levels = np.cumsum(deltas[order])
        last = np.ones(keys.shape[0], dtype=bool)
        last[:-1] = keys[1:] != keys[:-1]
        return cls(n_rows, _i64(keys[last]), _i64(levels[last]))

    # -- updates ---------------------------------------------------------------------------------
    def add(self, row: int, start: int, end: int, amount: int) -> None:
        """Add ``amount`` over [start, end) to ``row``; a negative amount removes an allocation."""
        if end <= start or amount == 0:
            return
        if not (start >= 0 and end < STRIDE and 0 <= row < self.n_rows):
            raise ValueError("row or time out of range")
        ks, ls = self._row(row)
        base = row * STRIDE
        for t in (start, end):
            key = base + t
            i = int(np.searchsorted(ks, key))
            if i == ks.shape[0] or ks[i] != key:
                prev = ls[i - 1] if i > 0 else 0
                ks, ls = np.insert(ks, i, key), np.insert(ls, i, prev)
        i0, i1 = np.searchsorted(ks, [base + start, base + end])
        ls = ls.copy()
        ls[i0:i1] += amount
        self._dirty[row] = (_i64(ks), _i64(ls))
        self._dec = None

    def _row(self, row: int) -> tuple[I64, I64]:
        if row in self._dirty:
            return self._dirty[row]
        lo, hi = np.searchsorted(self._keys, [row * STRIDE, (row + 1) * STRIDE])
        return self._keys[lo:hi], self._levels[lo:hi]

    def _flush(self) -> None:
        if not self._dirty:
            return
        keys: list[I64] = []
        levels: list[I64] = []
        pos = 0
        for row in sorted(self._dirty):
            lo, hi = (int(x) for x in np.searchsorted(self._keys, [row * STRIDE, (row + 1) * STRIDE]))
            ks, ls = self._dirty[row]
            keys += [self._keys[pos:lo], ks]
            levels += [self._levels[pos:lo], ls]
            pos = hi
        keys.append(self._keys[pos:])
        levels.append(self._levels[pos:])
        self._keys, self._levels = _i64(np.concatenate(keys)), _i64(np.concatenate(levels))
        self._dirty.clear()

    # -- queries ---------------------------------------------------------------------------------
    def peak(self, rows: I64, start: I64 | int, end: I64 | int) -> I64:
        """Peak usage of each row over [start, end) (``end > start``; scalars or one per row)."""
        self._flush()
        keys, levels = self._keys, self._levels
        rows = _i64(rows)
        out = np.zeros(rows.shape[0], dtype=np.int64)
        if keys.shape[0] == 0 or rows.shape[0] == 0:
            return out
        base = rows * STRIDE
        i = np.searchsorted(keys, base + start, side="right") - 1
        j = np.searchsorted(keys, base + end, side="left")
        ic = np.maximum(i, 0)
        same = (i >= 0) & (keys[ic] >= base)
        out = np.where(same, levels[ic], 0)
        first = i + 1
        lengths = j - first
        nz = lengths > 0
        if not nz.any():
            return _i64(out)
        starts, lens = first[nz], lengths[nz]
        ends = np.cumsum(lens)
        offs = ends - lens
        pos = np.arange(int(ends[-1])) - np.repeat(offs, lens) + np.repeat(starts, lens)
        inner = np.maximum.reduceat(levels[pos], offs)
        out[nz] = np.maximum(out[nz], inner)
        return _i64(out)

    def rows_above(self, cap: I64) -> set[int]:
        """Rows whose usage ever exceeds ``cap[row]`` (overbooked: capacity shrank under bookings)."""
        self._flush()
        rows = self._keys // STRIDE
        return {int(r) for r in np.unique(rows[self._levels > cap[rows]])}

    def level_at(self, rows: I64, t: int) -> I64:
        return self.peak(rows, t, t + 1)

    def _decreases(self) -> I64:
        """Keys where a row's usage drops: the only times a new start can become feasible."""
        self._flush()
        if self._dec is None:
            k, lv = self._keys, self._levels
            drop = np.zeros(k.shape[0], dtype=bool)
            if k.shape[0] > 1:
                same_row = (k[1:] // STRIDE) == (k[:-1] // STRIDE)
                drop[1:] = same_row & (lv[1:] < lv[:-1])
            self._dec = _i64(k[drop])
        return self._dec

    def next_decrease(self, rows: I64, after: int) -> int | None:
        """The earliest time ``> after`` at which any of ``rows`` drops, or ``None``."""
        dec = self._decreases()
        rows = _i64(rows)
        if dec.shape[0] == 0 or rows.shape[0] == 0:
            return None
        base = rows * STRIDE
        k = np.searchsorted(dec, base + after, side="right")
        kc = np.minimum(k, dec.shape[0] - 1)
        ok = (k < dec.shape[0]) & (dec[kc] < base + STRIDE)
        if not ok.any():
            return None
        return int((dec[kc] - base)[ok].min())

    def series(self, row: int) -> tuple[I64, I64]:
        """Event times and levels of one row (copies)."""
        self._flush()
        ks, ls = self._row(row)
        return _i64(ks - row * STRIDE), ls.copy()

    def earliest_fit(self, row: int, start: int, duration: int, threshold: int, latest: int) -> int | None:
        """Earliest ``t`` in [start, latest] with peak over [t, t + duration) <= threshold, or None.

        Only ``start`` and the ends of blocked stretches can be the answer, so they are the only
        candidates tried (vectorised)."""
        if threshold < 0 or latest < start:
            return None
        times, levels = self.series(row)
        blocked = np.nonzero(levels > threshold)[0]
        if blocked.size == 0:
            return start
        # a level > threshold >= 0 is never the last event (usage returns to 0), so i + 1 exists
        b0, b1 = times[blocked], times[blocked + 1]
        cands = np.concatenate([[start], b1[b1 > start]])
        cands = cands[cands <= latest]
        if cands.size == 0:
            return None
        k = np.searchsorted(b1, cands, side="right")
        kc = np.minimum(k, b0.shape[0] - 1)
        ok = (k >= b0.shape[0]) | (b0[kc] >= cands + duration)
        hits = np.nonzero(ok)[0]
        return int(cands[hits[0]]) if hits.size else None

    def bucket_peaks(self, rows: I64, edges: I64) -> npt.NDArray[np.int64]:
        """Peak usage of each row in each bucket [edges[b], edges[b+1]): shape (rows, buckets)."""
        rows = _i64(rows)
        nb = edges.shape[0] - 1
        if nb <= 0:
            return np.zeros((rows.shape[0], 0), dtype=np.int64)
        r = np.repeat(rows, nb)
        s = np.tile(edges[:-1], rows.shape[0])
        e = np.tile(edges[1:], rows.shape[0])
        return self.peak(r, s, e).reshape(rows.shape[0], nb)

    @property
    def nbytes(self) -> int:
        self._flush()
        dec = 0 if self._dec is None else self._dec.nbytes
        return int(self._keys.nbytes + self._levels.nbytes + dec)
