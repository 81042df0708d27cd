"""``StepTable``: committed usage of one resource class over time, for many providers at once.

Each provider is a *row*; a row's usage is a step function stored as sorted event times and the level
from each event until the next (level 0 before the first and after the last). All rows live in two flat
arrays keyed by ``row * STRIDE + time``, so one ``searchsorted`` answers a question for every row at
once.

Next to the flat arrays a table keeps a dense **block maximum** grid: ``bmax[row, b]`` is the exact peak
of the row over the block ``[t0 + b * bs, t0 + (b + 1) * bs)`` (``bs`` = one hour unless the span
needs coarser blocks). A window made of whole blocks is answered for every row by one slice-and-max;
only windows with partial edge blocks fall back to the flat arrays, and only for the rows whose edge
blocks could raise the answer.

One module on purpose: the arrays, the grid and the vectorised queries over them are one data
structure; every query reads the representation directly, so splitting them apart would only spread it.

Updates (``add``) never rewrite the flat arrays: the touched row is kept as a small *delta* (its own
event arrays, overriding the flat arrays for that row) and its block-maximum row is recomputed at once
(O(row events + blocks)). Queries merge the deltas in; the deltas are compacted into the flat arrays
lazily, once more than ``COMPACT_ROWS`` rows are dirty (amortised O(events / COMPACT_ROWS) per update).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from slotbroker.engine.steprow import NONE_T as NONE_T  # "no time" inside vectorised searches
from slotbroker.engine.steprow import merge_row, row_fit, row_peak

I64 = npt.NDArray[np.int64]
STRIDE = 1 << 38  # row key stride: times lie in [0, STRIDE), i.e. up to year 10680 (past any datetime)
HORIZON = STRIDE - 1  # latest time the tables hold; bookings are clipped to [0, HORIZON]
BLOCK_S = 3600  # block of the dense maximum grid (grows when the span needs more than MAX_BLOCKS)
MAX_BLOCKS = 2048
TRIM = 0.005  # share of event times at each end the grid may leave outside (see ``_extent``)
COMPACT_ROWS = 64  # dirty rows merged into the flat arrays once there are more than this


def _i64(x: object) -> I64:
    return np.asarray(x, dtype=np.int64)


def clip_times(start: I64, end: I64) -> tuple[I64, I64]:
    """Bookings clipped to [0, HORIZON]. The store may hold rows from before the epoch or past any
    request (an end in year 2600 or 9999); no request can ask about times outside the clip (requests
    start at or after the epoch and end before year 10000), so the clip never changes an answer."""
    # ``np.clip``'s dispatch costs several times the two ufuncs on a replay's small batches
    return np.minimum(np.maximum(start, 0), HORIZON), np.minimum(np.maximum(end, 0), HORIZON)


class _Grid:
    """Dense per-(row, block) exact peaks; see the module docstring. Stored block-major
    (``bmax[block, row]``): a window's few blocks are then contiguous for every row at once, which
    keeps a query to a handful of cache lines per block instead of one or two per row.

    ``outside`` lists the rows with events outside the grid (a booking decades away would otherwise
    coarsen the blocks of every row): only those rows can be non-zero beyond the grid, so only they
    take the exact path for a window that leaves it."""

    __slots__ = ("bmax", "bs", "nb", "outside", "t0")

    def __init__(self, t0: int, bs: int, nb: int, bmax: I64, outside: I64 | None = None) -> None:
        self.t0, self.bs, self.nb, self.bmax = t0, bs, nb, bmax
        self.outside: I64 = _i64([]) if outside is None else outside

    def covers(self, lo: int, hi: int) -> bool:
        return self.t0 <= lo and hi < self.t0 + self.nb * self.bs  # hi: an event time, in a block


def _row_blocks(times: I64, levels: I64, t0: int, bs: int, nb: int) -> I64:
    """Exact peak of one row's step function in each of ``nb`` blocks from ``t0`` (events outside
    the blocks may exist: the last one before ``t0`` sets the level carried in)."""
    i0, i1 = np.searchsorted(times, [t0, t0 + nb * bs], side="left")
    lead = int(levels[i0 - 1]) if i0 > 0 else 0
    times, levels = times[i0:i1], levels[i0:i1]
    if times.shape[0] == 0:
        return np.full(nb, lead, dtype=np.int64)
    out = np.zeros(nb, dtype=np.int64)
    b = (times - t0) // bs
    np.maximum.at(out, b, levels)
    j = np.arange(nb, dtype=np.int64)
    f = np.searchsorted(b, j, side="left")  # first event in block j (or later)
    prev = f - 1
    carry = np.where(prev >= 0, levels[np.maximum(prev, 0)], lead)
    at_edge = (f < b.shape[0]) & (times[np.minimum(f, b.shape[0] - 1)] == t0 + j * bs)
    carry[at_edge] = 0  # an event exactly at the block start replaces the carried level
    return np.maximum(out, carry)


def _block_peaks(rows: I64, times: I64, levels: I64, n: int, t0: int, bs: int, nb: int) -> I64:
    """``_row_blocks`` for many rows at once: the exact peak of each of ``n`` rows in each of ``nb``
    blocks from ``t0``, as a block-major ``(nb, n)`` array. ``rows`` (in ``range(n)``), ``times`` and
    ``levels`` are the rows' events sorted by (row, time), as the flat arrays hold them; events outside
    the blocks may exist (the last one before ``t0`` sets the level carried in)."""
    before, after = times < t0, times >= t0 + nb * bs
    if before.any() or after.any():
        # per row, the last event before the grid becomes an event at t0 (the level carried in),
        # unless the row has an event at t0 itself; events after the grid do not matter to it
        nxt = np.ones(times.shape[0], dtype=bool)
        nxt[:-1] = ~before[1:] | (rows[1:] != rows[:-1])
        at_t0 = np.zeros(times.shape[0], dtype=bool)
        at_t0[:-1] = (rows[1:] == rows[:-1]) & (times[1:] == t0)
        carried = before & nxt & ~at_t0
        keep = carried | ~(before | after)
        times = np.where(carried, t0, times)[keep]
        rows, levels = rows[keep], levels[keep]
    if times.shape[0] == 0:
        return np.zeros((nb, n), dtype=np.int64)
    cell = rows * nb + (times - t0) // bs  # non-decreasing (events are sorted by row, then time)
    flat = np.zeros(n * nb, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], cell[1:] != cell[:-1]]))
    flat[cell[starts]] = np.maximum.reduceat(levels, starts)
    # level carried into each cell from the row's last event before it
    cells = np.arange(n * nb, dtype=np.int64)
    f = np.searchsorted(cell, cells, side="left")
    prev = np.maximum(f - 1, 0)
    carry = np.where((f > 0) & (rows[prev] == cells // nb), levels[prev], 0)
    fc = np.minimum(f, cell.shape[0] - 1)
    block_start = t0 + (cells % nb) * bs
    at_edge = (f < cell.shape[0]) & (cell[fc] == cells) & (times[fc] == block_start)
    carry[at_edge] = 0
    np.maximum(flat, carry, out=flat)
    return np.ascontiguousarray(flat.reshape(n, nb).T)


def _extent(times: I64) -> tuple[int, int, int]:
    """The grid's ``(t0, bs, nb)``: every event time at ``BLOCK_S`` (doubled until at most
    ``MAX_BLOCKS`` blocks) unless a few outlying events (``TRIM`` of them at each end) would force
    coarser blocks than the rest needs; those are then left outside the grid."""

    def fit(lo: int, hi: int) -> tuple[int, int, int]:
        bs = BLOCK_S
        while -(-(hi - (lo - lo % bs)) // bs) > MAX_BLOCKS:
            bs *= 2
        t0 = lo - lo % bs
        return t0, bs, -(-(hi - t0) // bs)

    full = fit(int(times.min()), int(times.max()) + 1)
    k = max(1, int(times.shape[0] * TRIM))
    if full[1] == BLOCK_S or times.shape[0] <= 2 * k:
        return full
    part = np.partition(times, (k, times.shape[0] - 1 - k))
    core = fit(int(part[k]), int(part[times.shape[0] - 1 - k]) + 1)
    return full if full[1] <= 2 * core[1] else core


class StepTable:
    """Usage step functions for ``n_rows`` providers of one resource class."""

    def __init__(self, n_rows: int, keys: I64 | None = None, levels: I64 | None = None) -> None:
        self.n_rows = n_rows
        self._keys: I64 = _i64([]) if keys is None else keys
        self._levels: I64 = _i64([]) if levels is None else levels
        self._dirty: dict[int, tuple[I64, I64]] = {}  # row -> (keys, levels), overrides the flat arrays
        self._dirty_arr: I64 = _i64([])
        self._dec: I64 | None = None  # decrease keys of the flat arrays (dirty rows masked at query)
        self._grid: _Grid | None = None
        self._floor = 0  # ``drop_past``'s latest ``now``: updates are clipped to start there

    @classmethod
    def build(cls, n_rows: int, rows: I64, start: I64, end: I64, amount: I64) -> StepTable:
        """Build every row at once: sort all +amount/-amount events by (row, time) and take a prefix
        sum. Each row's events sum to zero, so the global prefix sum restarts at 0 on every row."""
        start, end = clip_times(start, end)
        keep = end > start
        rows, start, end, amount = rows[keep], start[keep], end[keep], amount[keep]
        base = rows * STRIDE
        keys = np.concatenate([base + start, base + end])
        del base
        deltas = np.concatenate([amount, -amount])
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        levels = np.cumsum(deltas[order])
        del order, deltas
        last = np.ones(keys.shape[0], dtype=bool)
        last[:-1] = keys[1:] != keys[:-1]
        return cls(n_rows, _i64(keys[last]), _i64(levels[last]))

    # -- updates ---------------------------------------------------------------------------------
    def add(self, row: int, start: int, end: int, amount: int) -> None:
        """Add ``amount`` over [start, end) to ``row``; a negative amount removes an allocation.

        The row is rewritten once: the events before ``start``, an event at ``start`` (when new), the
        events inside raised by ``amount``, an event at ``end`` (when new) carrying the old level, the
        events after; then events that no longer change the level are dropped (rows stay minimal)."""
        start, end = max(self._floor, min(start, HORIZON)), max(0, min(end, HORIZON))
        if end <= start or amount == 0:
            return
        if not 0 <= row < self.n_rows:
            raise ValueError("row out of range")
        ks, ls = self._row(row)
        base = row * STRIDE
        k0, k1 = base + start, base + end
        i0, i1 = ks.searchsorted((k0, k1)).tolist()
        n = ks.shape[0]
        new0 = not (i0 < n and ks[i0] == k0)
        new1 = not (i1 < n and ks[i1] == k1)
        out_k = np.empty(n + new0 + new1, dtype=np.int64)
        out_l = np.empty(n + new0 + new1, dtype=np.int64)
        out_k[:i0], out_l[:i0] = ks[:i0], ls[:i0]
        p = i0
        if new0:
            out_k[p], out_l[p] = k0, (ls[i0 - 1] if i0 > 0 else 0) + amount
            p += 1
        q = p + i1 - i0
        out_k[p:q] = ks[i0:i1]
        np.add(ls[i0:i1], amount, out=out_l[p:q])
        if new1:
            out_k[q], out_l[q] = k1, ls[i1 - 1] if i1 > 0 else 0
            q += 1
        out_k[q:], out_l[q:] = ks[i1:], ls[i1:]
        ks, ls = out_k, out_l
        keep = np.empty(ks.shape[0], dtype=bool)
        keep[0] = ls[0] != 0
        np.not_equal(ls[1:], ls[:-1], out=keep[1:])
        if not keep.all():
            ks, ls = ks[keep], ls[keep]
        fresh = row not in self._dirty
        self._dirty[row] = (ks, ls)
        if fresh:
            self._dirty_arr = np.array(sorted(self._dirty), dtype=np.int64)
        self._update_grid(row, start, end)
        if len(self._dirty) > COMPACT_ROWS:
            self.compact()

    def add_many(self, rows: I64, start: I64, end: I64, amount: I64) -> None:
        """``add`` for a batch (one entry per allocation; negative amounts remove). The touched rows are
        rebuilt together from their events and the batch's by one ``merge_row``, and their block maxima
        by one ``_block_peaks``, however many rows and allocations the batch holds (numpy calls per
        batch, not per row: the calendar cache replays dozens of rows before most searches)."""
        rows, amount = _i64(rows), _i64(amount)
        start, end = clip_times(_i64(start), _i64(end))
        start = np.maximum(start, self._floor)
        live = (end > start) & (amount != 0)
        rows, start, end, amount = rows[live], start[live], end[live], amount[live]
        if rows.shape[0] == 0:
            return
        if int(rows.min()) < 0 or int(rows.max()) >= self.n_rows:
            raise ValueError("row out of range")
        touched = np.unique(rows)
        bases = touched * STRIDE
        lo = np.searchsorted(self._keys, bases).tolist()
        hi = np.searchsorted(self._keys, bases + STRIDE).tolist()
        ks_parts: list[I64] = []
        ls_parts: list[I64] = []
        for i, row in enumerate(touched.tolist()):
            ks, ls = self._dirty.get(row) or (self._keys[lo[i] : hi[i]], self._levels[lo[i] : hi[i]])
            ks_parts.append(ks)
            ls_parts.append(ls)
        # every touched row at once: their events in (row, time) order are a table's flat arrays, and
        # each row ends at level 0, so one merge is the rows' merges side by side (the prefix sum
        # restarts at 0 on every row, as in ``build``)
        base = rows * STRIDE
        mk, ml = merge_row(
            _i64(np.concatenate(ks_parts)),
            _i64(np.concatenate(ls_parts)),
            np.concatenate([base + start, base + end]),
            np.concatenate([amount, -amount]),
        )
        cut = np.searchsorted(mk, np.concatenate([bases, bases[-1:] + STRIDE])).tolist()
        for i, row in enumerate(touched.tolist()):
            self._dirty[row] = (mk[cut[i] : cut[i + 1]], ml[cut[i] : cut[i + 1]])
        self._dirty_arr = np.array(sorted(self._dirty), dtype=np.int64)
        self._update_grid_rows(touched, mk, ml, rows, start, end)
        if len(self._dirty) > COMPACT_ROWS:
            self.compact()

    def _update_grid_rows(
        self, touched: I64, keys: I64, levels: I64, rows: I64, start: I64, end: I64
    ) -> None:
        """The block maxima of the ``touched`` rows (sorted), whose events are now ``keys``/``levels``,
        after the batch ``rows``/``start``/``end`` (in the caller's order): one ``_block_peaks`` over
        them all when the grid covers the batch, else allocation by allocation through ``_update_grid``,
        in the batch's order, as ``add`` would (the grid may widen, or leave a row outside, and which
        depends on the order).

        Only the blocks from the batch's first start to its last end are recomputed: a batch changes
        levels only inside its allocations' [start, end), and a block's peak depends only on the levels
        inside it, so every other block keeps its value (``_block_peaks`` carries the level in from the
        events before its first block). A replay's batch spans a few hours of a grid of months."""
        g = self._grid
        if g is None:
            return
        lo, hi = int(start.min()), int(end.max())
        if not g.covers(lo, hi):
            for row, s, e in zip(rows.tolist(), start.tolist(), end.tolist(), strict=True):
                self._update_grid(row, s, e)
            return
        b0, b1 = (lo - g.t0) // g.bs, (hi - 1 - g.t0) // g.bs + 1  # blocks meeting [lo, hi)
        rows = keys // STRIDE
        local = np.searchsorted(touched, rows)
        n = touched.shape[0]
        t0 = g.t0 + b0 * g.bs
        g.bmax[b0:b1, touched] = _block_peaks(local, keys - rows * STRIDE, levels, n, t0, g.bs, b1 - b0)

    def shorten(self, row: int, start: int, end: int, amount: int, new_end: int) -> None:
        """Release the tail [new_end, end) of a booking of ``amount`` over [start, end) (an early end);
        ``new_end <= start`` releases all of it. ``new_end > end`` is no shortening: ``ValueError``."""
        if new_end > end:
            raise ValueError("shorten cannot lengthen a booking")
        self.add(row, max(new_end, start), end, -amount)

    def drop_past(self, now: int) -> None:
        """Forget what lies before ``now``: per row, the events at or before ``now`` collapse into one
        event at ``now`` carrying the level in force then (none when it is 0), and the block grid is
        rebuilt over what is left, so a long-lived table does not coarsen as time moves on.

        Every query about times at or after ``now`` (``peak``/``earliest_fits`` from ``now``,
        ``next_decrease(after >= now)``, ``blocked_spans`` from ``now``, ...) answers exactly as before;
        queries before ``now`` are no longer answered (the table reads 0 there). The result is the table
        of the bookings clipped to start at ``now`` (those ended by ``now`` dropped), and it stays so:
        later updates are clipped the same way (a booking in the forgotten past changes nothing)."""
        now = max(0, min(now, HORIZON))
        self._floor = max(self._floor, now)
        self.compact()
        k, lv = self._keys, self._levels
        if k.shape[0]:
            rows = k // STRIDE
            before = (k - rows * STRIDE) <= now
            last = before.copy()  # the last event at or before now, per row
            last[:-1] &= ~(before[1:] & (rows[1:] == rows[:-1]))
            carried = last & (lv != 0)
            keep = ~before | carried
            self._keys = _i64(np.where(carried, rows * STRIDE + now, k)[keep])
            self._levels = _i64(lv[keep])
        self._dec = None
        if self._grid is not None:
            self._grid = self._build_grid()

    def _update_grid(self, row: int, start: int, end: int) -> None:
        g = self._grid
        if g is None:
            return
        if not g.covers(start, end):
            lo = min(g.t0, start - start % BLOCK_S)
            hi = max(g.t0 + g.nb * g.bs, end + 1)
            pre = (g.t0 - lo + g.bs - 1) // g.bs
            t0 = g.t0 - pre * g.bs
            nb = -(-(hi - t0) // g.bs)
            if nb > MAX_BLOCKS:
                # the row now has events outside the grid: it takes the exact path beyond it
                if not np.isin(row, g.outside):
                    g.outside = _i64(np.union1d(g.outside, [row]))
            else:
                # outside the old grid only the ``outside`` rows could be non-zero: pad with zeros and
                # recompute those rows
                bmax = np.pad(g.bmax, ((pre, nb - g.nb - pre), (0, 0)))
                g = self._grid = _Grid(t0, g.bs, nb, bmax, g.outside)
                for r in g.outside.tolist():
                    ks, ls = self._row(r)
                    g.bmax[:, r] = _row_blocks(ks - r * STRIDE, ls, g.t0, g.bs, g.nb)
        ks, ls = self._row(row)
        g.bmax[:, row] = _row_blocks(ks - row * STRIDE, ls, g.t0, g.bs, g.nb)

    def _row(self, row: int) -> tuple[I64, I64]:
        hit = self._dirty.get(row)
        if hit is not None:
            return hit
        lo, hi = np.searchsorted(self._keys, [row * STRIDE, (row + 1) * STRIDE])
        return self._keys[lo:hi], self._levels[lo:hi]

    def compact(self) -> None:
        """Merge the dirty rows into the flat arrays (O(events))."""
        if not self._dirty:
            return
        keys: list[I64] = []
        levels: list[I64] = []
        pos = 0
        dirty = sorted(self._dirty)
        bases = np.array(dirty, dtype=np.int64) * STRIDE
        los = np.searchsorted(self._keys, bases).tolist()  # one search for every dirty row's extent
        his = np.searchsorted(self._keys, bases + STRIDE).tolist()
        for row, lo, hi in zip(dirty, los, his, strict=True):
            ks, ls = self._dirty[row]
            keys += [self._keys[pos:lo], ks]
            levels += [self._levels[pos:lo], ls]
            pos = hi
        keys.append(self._keys[pos:])
        levels.append(self._levels[pos:])
        self._keys, self._levels = _i64(np.concatenate(keys)), _i64(np.concatenate(levels))
        self._dirty.clear()
        self._dirty_arr = _i64([])
        self._dec = None  # the grid stays valid: it already reflects every dirty row

    # -- the dense grid ----------------------------------------------------------------------------
    def grid(self) -> _Grid:
        if self._grid is None:
            self._grid = self._build_grid()
        return self._grid

    def _build_grid(self) -> _Grid:
        self.compact()
        keys, levels = self._keys, self._levels
        n = self.n_rows
        if keys.shape[0] == 0:
            return _Grid(0, BLOCK_S, 1, np.zeros((1, n), dtype=np.int64))
        times = keys % STRIDE
        t0, bs, nb = _extent(times)
        rows = keys // STRIDE
        outside = _i64([])
        if (times < t0).any() or (times >= t0 + nb * bs).any():
            outside = _i64(np.unique(rows[(times < t0) | (times >= t0 + nb * bs)]))
        return _Grid(t0, bs, nb, _block_peaks(rows, times, levels, n, t0, bs, nb), outside)

    # -- queries ---------------------------------------------------------------------------------
    def peak(self, rows: I64, start: I64 | int, end: I64 | int) -> I64:
        """Peak usage of each row over [start, end) (``end > start``; scalars or one per row)."""
        rows = _i64(rows)
        if rows.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        if isinstance(start, (int, np.integer)) and isinstance(end, (int, np.integer)):
            if rows.shape[0] == 1 and self._grid is None:  # one row, no grid kept: read its events
                r = int(rows[0])
                ks, ls = self._row(r)
                return np.array([row_peak(ks, ls, r * STRIDE, int(start), int(end))], dtype=np.int64)
            return self._peak_window(rows, int(start), int(end))
        return self._peak_exact(rows, _i64(start), _i64(end))

    def _peak_window(self, rows: I64, s: int, e: int) -> I64:
        """One window for many rows, from the block grid; exact fallback only where needed."""
        g = self.grid()
        bs, t0, nb = g.bs, g.t0, g.nb
        b0, b1 = (s - t0) // bs, -(-(e - t0) // bs)  # blocks touching [s, e)
        c0, c1 = max(b0, 0), min(b1, nb)
        # rows with events outside the grid are exact there (the others are 0 outside it)
        leaves = g.outside.size > 0 and (b0 < 0 or b1 > nb)
        if c0 >= c1:
            out = np.zeros(rows.shape[0], dtype=np.int64)
            if leaves:
                far = np.flatnonzero(np.isin(rows, g.outside))
                out[far] = self._peak_exact(rows[far], _i64(s), _i64(e))
            return out
        # full blocks inside [s, e); blocks outside the grid are all-zero, so clipping is exact
        f0 = c0 if (b0 < 0 or s == t0 + b0 * bs) else c0 + 1
        f1 = c1 if (b1 > nb or e == t0 + b1 * bs) else c1 - 1
        sub = g.bmax[c0:c1]
        n = rows.shape[0]
        if not (n == self.n_rows and rows[0] == 0 and rows[-1] == n - 1 and (rows[1:] > rows[:-1]).all()):
            sub = sub[:, rows]  # (the common "every row" query needs no gather)
        if f0 == c0 and f1 == c1 and not leaves:
            return _i64(sub.max(axis=0))
        inner = sub[f0 - c0 : f1 - c0].max(axis=0) if f1 > f0 else np.zeros(rows.shape[0], np.int64)
        ub = sub.max(axis=0)
        need = (
            np.flatnonzero((ub > inner) | np.isin(rows, g.outside)) if leaves else np.flatnonzero(ub > inner)
        )
        if need.size:
            inner[need] = self._peak_exact(rows[need], _i64(s), _i64(e))
        return _i64(inner)

    def _peak_exact(self, rows: I64, start: I64, end: I64) -> I64:
        """Peak from the event arrays (flat arrays, with dirty rows overridden)."""
        out = self._peak_flat(self._keys, self._levels, rows, start, end)
        if self._dirty:
            hit = np.flatnonzero(np.isin(rows, self._dirty_arr))
            for i in hit.tolist():
                r = int(rows[i])
                ks, ls = self._dirty[r]
                s = start if start.ndim == 0 else start[i : i + 1]
                e = end if end.ndim == 0 else end[i : i + 1]
                out[i] = self._peak_flat(ks, ls, rows[i : i + 1], s, e)[0]
        return out

    @staticmethod
    def _peak_flat(keys: I64, levels: I64, rows: I64, start: I64, end: I64) -> I64:
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
        self.compact()
        rows = self._keys // STRIDE
        return {int(r) for r in np.unique(rows[self._levels > cap[rows]])}

    def row_max(self, row: int) -> int:
        """Highest level a row ever reaches."""
        _, ls = self._row(row)
        return int(ls.max()) if ls.shape[0] else 0

    def rows_max(self, rows: I64) -> I64:
        """``row_max`` of each of ``rows`` (distinct), with one reduction over all their events."""
        rows = _i64(rows)
        bases = rows * STRIDE
        lo = np.searchsorted(self._keys, bases).tolist()
        hi = np.searchsorted(self._keys, bases + STRIDE).tolist()
        parts: list[I64] = []
        for i, row in enumerate(rows.tolist()):
            hit = self._dirty.get(row)
            parts.append(self._levels[lo[i] : hi[i]] if hit is None else hit[1])
        sizes = np.array([p.shape[0] for p in parts], dtype=np.int64)
        out = np.zeros(rows.shape[0], dtype=np.int64)
        some = sizes > 0
        if some.any():
            starts = (np.cumsum(sizes) - sizes)[some]  # empty rows add nothing between their neighbours
            out[some] = np.maximum.reduceat(np.concatenate(parts), starts)
        return out

    def level_at(self, rows: I64, t: int) -> I64:
        return self.peak(rows, t, t + 1)

    def _decreases(self) -> I64:
        """Keys where a row's usage drops: the only times a new start can become feasible."""
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
        rows = _i64(rows)
        if rows.shape[0] == 0:
            return None
        best: int | None = None
        if self._dirty:
            mine = np.isin(rows, self._dirty_arr)
            for r in rows[mine].tolist():
                ks, ls = self._dirty[r]
                t = ks - r * STRIDE
                drops = t[1:][(ls[1:] < ls[:-1]) & (t[1:] > after)]
                if ks.shape[0] and t[0] > after and ls[0] < 0:
                    drops = np.concatenate([t[:1], drops])
                if drops.size and (best is None or int(drops.min()) < best):
                    best = int(drops.min())
            rows = rows[~mine]
        dec = self._decreases()
        if dec.shape[0] == 0 or rows.shape[0] == 0:
            return best
        base = rows * STRIDE
        k = np.searchsorted(dec, base + after, side="right")
        kc = np.minimum(k, dec.shape[0] - 1)
        ok = (k < dec.shape[0]) & (dec[kc] < base + STRIDE)
        if not ok.any():
            return best
        got = int((dec[kc] - base)[ok].min())
        return got if best is None else min(got, best)

    def series(self, row: int) -> tuple[I64, I64]:
        """Event times and levels of one row (copies)."""
        ks, ls = self._row(row)
        return _i64(ks - row * STRIDE), ls.copy()

    def neighbours(self, rows: I64, s: int, e: int) -> tuple[I64, I64]:
        """Per row: the time of its last event at or before ``s``, and of its first at or after ``e``;
        -1 where there is none (event times are never negative). What ``series`` and two searches give
        row by row, for every row in a few searches (``least_gap``'s idle time around a window)."""
        rows = _i64(rows)
        prev, nxt = self._neighbours_flat(self._keys, rows, s, e)
        if self._dirty:
            for i in np.flatnonzero(np.isin(rows, self._dirty_arr)).tolist():
                ks, _ = self._dirty[int(rows[i])]
                p, n = self._neighbours_flat(ks, rows[i : i + 1], s, e)
                prev[i], nxt[i] = p[0], n[0]
        return prev, nxt

    @staticmethod
    def _neighbours_flat(keys: I64, rows: I64, s: int, e: int) -> tuple[I64, I64]:
        if keys.shape[0] == 0 or rows.shape[0] == 0:
            return np.full(rows.shape[0], -1, dtype=np.int64), np.full(rows.shape[0], -1, dtype=np.int64)
        base = rows * STRIDE
        lo, hi = keys.searchsorted(base), keys.searchsorted(base + STRIDE)  # each row's events
        k = np.clip(keys.searchsorted(base + s, side="right"), lo, hi)  # past its events <= s
        j = np.clip(keys.searchsorted(base + e, side="left"), lo, hi)  # at its first event >= e
        prev = np.where(k > lo, keys[np.maximum(k - 1, 0)] - base, -1)
        nxt = np.where(j < hi, keys[np.minimum(j, keys.shape[0] - 1)] - base, -1)
        return _i64(prev), _i64(nxt)

    def earliest_fit(self, row: int, start: int, duration: int, threshold: int, latest: int) -> int | None:
        """Earliest ``t`` in [start, latest] with peak over [t, t + duration) <= threshold, or None."""
        ks, ls = self._row(row)
        got = row_fit(ks, ls, row * STRIDE, start, duration, threshold, latest)
        return None if got >= NONE_T else got

    def earliest_fits(self, rows: I64, start: I64, duration: int, threshold: I64, latest: int) -> I64:
        """Per row: earliest ``t`` in [start[i], latest] with peak over [t, t + duration) <=
        threshold[i]; ``NONE_T`` where there is none. Vectorised over the rows' events in range.

        A start can only be the row's ``start`` or the start of a stretch at or below the threshold
        (right after a blocked stretch); it is the answer when that stretch lasts ``duration``."""
        rows, start, threshold = _i64(rows), _i64(start), _i64(threshold)
        if rows.shape[0] == 1:
            r = int(rows[0])
            ks, ls = self._row(r)
            got = row_fit(ks, ls, r * STRIDE, int(start[0]), duration, int(threshold[0]), latest)
            return np.array([got], dtype=np.int64)
        out = np.full(rows.shape[0], NONE_T, dtype=np.int64)
        live = (threshold >= 0) & (start <= latest)
        if not live.any():
            return out
        clean = live.copy()
        if self._dirty:
            mine = np.isin(rows, self._dirty_arr) & live
            clean &= ~mine
            for i in np.flatnonzero(mine).tolist():
                ks, ls = self._dirty[int(rows[i])]
                out[i] = self._fits_flat(
                    ks, ls, rows[i : i + 1], start[i : i + 1], duration, threshold[i : i + 1], latest
                )[0]
        idx = np.flatnonzero(clean)
        if idx.size:
            out[idx] = self._fits_flat(
                self._keys, self._levels, rows[idx], start[idx], duration, threshold[idx], latest
            )
        return out

    @staticmethod
    def _fits_flat(
        keys: I64, levels: I64, rows: I64, start: I64, duration: int, threshold: I64, latest: int
    ) -> I64:
        n = rows.shape[0]
        if keys.shape[0] == 0:
            return start.copy()  # always at level 0 (callers pass start <= latest, threshold >= 0)
        base = rows * STRIDE
        # events in effect at start .. the first event at or after latest + duration
        i = np.searchsorted(keys, base + start, side="right") - 1
        lo = np.maximum(i, 0)
        lo = np.where((i >= 0) & (keys[lo] >= base), lo, i + 1)  # i + 1: first event of the row
        hi = np.searchsorted(keys, base + latest + duration, side="left")
        lens = np.maximum(hi - lo, 0)
        total = int(lens.sum())
        # segment list per row: a leading segment [start, first event) then one per event
        seg_n = lens + 1
        offs = np.cumsum(seg_n) - seg_n
        m = int(seg_n.sum())
        owner = np.repeat(np.arange(n, dtype=np.int64), seg_n)
        seg_t = np.empty(m, dtype=np.int64)
        seg_l = np.zeros(m, dtype=np.int64)
        seg_t[offs] = start
        ic = np.maximum(i, 0)
        seg_l[offs] = np.where((i >= 0) & (keys[ic] >= base), levels[ic], 0)
        if total:
            ev = np.ones(m, dtype=bool)
            ev[offs] = False
            pos = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(lo, lens)
            seg_t[ev] = np.maximum(keys[pos] - np.repeat(base, lens), np.repeat(start, lens))
            seg_l[ev] = levels[pos]
        blocked = seg_l > threshold[owner]
        # a free stretch starts at a free segment whose predecessor (same row) is blocked or absent
        first = np.zeros(m, dtype=bool)
        first[offs] = True
        run_start = ~blocked & (first | np.concatenate([[True], blocked[:-1]]))
        # the end of the free stretch: the row's next blocked segment (or never)
        bidx = np.flatnonzero(blocked)
        k = np.searchsorted(bidx, np.arange(m), side="left")
        kc = np.minimum(k, max(bidx.shape[0] - 1, 0))
        nxt_blocked = np.full(m, NONE_T, dtype=np.int64)
        if bidx.shape[0]:
            same = (k < bidx.shape[0]) & (owner[bidx[kc]] == owner)
            nxt_blocked[same] = seg_t[bidx[kc[same]]]
        ok = run_start & (seg_t <= latest) & (nxt_blocked - seg_t >= duration)
        out = np.full(n, NONE_T, dtype=np.int64)
        hits = np.flatnonzero(ok)
        if hits.size:
            o = owner[hits]
            uniq, first_hit = np.unique(o, return_index=True)
            out[uniq] = seg_t[hits[first_hit]]
        return out

    def blocked_spans(
        self, rows: I64, start: int | I64, end: int | I64, threshold: I64
    ) -> tuple[I64, I64, I64]:
        """Where each row's usage exceeds ``threshold[i]`` inside [start, end) (one window for every row,
        or one per row; a row may be asked about several times): ``(i, a, b)`` arrays, one entry per
        step of the row above its threshold, clipped to its window (``i`` indexes ``rows``; spans of
        one query are in time order, adjacent spans are not merged)."""
        rows, threshold = _i64(rows), _i64(threshold)
        st = np.full(rows.shape, start, np.int64) if np.ndim(start) == 0 else _i64(start)
        en = np.full(rows.shape, end, np.int64) if np.ndim(end) == 0 else _i64(end)
        if not self._dirty:
            return self._spans_flat(self._keys, self._levels, rows, st, en, threshold)
        parts: list[tuple[I64, I64, I64]] = []
        clean = np.ones(rows.shape[0], dtype=bool)
        if self._dirty:
            mine = np.isin(rows, self._dirty_arr)
            clean &= ~mine
            for i in np.flatnonzero(mine).tolist():
                ks, ls = self._dirty[int(rows[i])]
                w = slice(i, i + 1)
                o, a, b = self._spans_flat(ks, ls, rows[w], st[w], en[w], threshold[w])
                parts.append((o + i, a, b))
        idx = np.flatnonzero(clean)
        if idx.size:
            o, a, b = self._spans_flat(self._keys, self._levels, rows[idx], st[idx], en[idx], threshold[idx])
            parts.append((idx[o], a, b))
        if not parts:
            return _i64([]), _i64([]), _i64([])
        if len(parts) == 1:
            return parts[0]
        return (
            _i64(np.concatenate([p[0] for p in parts])),
            _i64(np.concatenate([p[1] for p in parts])),
            _i64(np.concatenate([p[2] for p in parts])),
        )

    @staticmethod
    def _spans_flat(
        keys: I64, levels: I64, rows: I64, start: I64, end: I64, threshold: I64
    ) -> tuple[I64, I64, I64]:
        live = end > start
        if not live.all():
            rows, start, end, threshold = rows[live], start[live], end[live], threshold[live]
            back = np.flatnonzero(live)
        else:
            back = None
        n = rows.shape[0]
        if n == 0:
            return _i64([]), _i64([]), _i64([])
        if keys.shape[0] == 0:  # level 0 throughout
            hit = np.flatnonzero(threshold < 0)
            o, a, b = _i64(hit), start[hit], end[hit]
        else:
            o, a, b = StepTable._spans_rows(keys, levels, rows, start, end, threshold)
        return (o if back is None else _i64(back[o])), _i64(a), _i64(b)

    @staticmethod
    def _spans_rows(
        keys: I64, levels: I64, rows: I64, start: I64, end: I64, threshold: I64
    ) -> tuple[I64, I64, I64]:
        n = rows.shape[0]
        base = rows * STRIDE
        i = np.searchsorted(keys, base + start, side="right") - 1  # event in effect at start
        j = np.searchsorted(keys, base + end, side="left")  # events before end
        ic = np.maximum(i, 0)
        lead = np.where((i >= 0) & (keys[ic] >= base), levels[ic], 0)
        first = i + 1  # events strictly after start (of this row: keys[i] is the last key <= start)
        lens = np.maximum(j - first, 0)
        total = int(lens.sum())
        if total == 0:
            hit = np.flatnonzero(lead > threshold)
            return _i64(hit), start[hit], end[hit]
        seg_n = lens + 1
        offs = np.cumsum(seg_n) - seg_n
        m = offs[-1] + seg_n[-1]
        owner = np.repeat(np.arange(n, dtype=np.int64), seg_n)
        seg_t = np.empty(m, dtype=np.int64)
        seg_l = np.empty(m, dtype=np.int64)
        seg_t[offs] = start
        seg_l[offs] = lead
        ev = np.ones(m, dtype=bool)
        ev[offs] = False
        pos = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(first, lens)
        seg_t[ev] = keys[pos] - np.repeat(base, lens)
        seg_l[ev] = levels[pos]
        seg_e = np.empty(m, dtype=np.int64)
        seg_e[:-1] = seg_t[1:]
        seg_e[offs + seg_n - 1] = end  # the last step of each row runs to the end of its window
        hit = np.flatnonzero(seg_l > threshold[owner])
        return owner[hit], seg_t[hit], seg_e[hit]

    def dirty_blocks(
        self, rows: I64, lo: int, hi: int, threshold: I64
    ) -> tuple[int, int, npt.NDArray[np.bool_]] | None:
        """The block grid's view of [lo, hi): ``(t, bs, dirty)`` where ``dirty[b, i]`` says the row's
        peak over the block ``[t + b * bs, t + (b + 1) * bs)`` exceeds ``threshold[i]`` (a clean block
        stays at or below it throughout; a dirty one exceeds it somewhere, maybe outside [lo, hi) for
        the two end blocks). Blocks run from the one holding ``lo`` to the one holding ``hi - 1``.
        None when [lo, hi) leaves the grid (only there can rows be outside it)."""
        g = self.grid()
        b0, b1 = (lo - g.t0) // g.bs, (hi - 1 - g.t0) // g.bs + 1
        if hi <= lo or b0 < 0 or b1 > g.nb:
            return None
        sub = g.bmax[b0:b1]
        rows = _i64(rows)
        n = rows.shape[0]
        if not (
            n == self.n_rows and n and rows[0] == 0 and rows[-1] == n - 1 and (rows[1:] > rows[:-1]).all()
        ):
            sub = sub[:, rows]
        return g.t0 + b0 * g.bs, g.bs, sub > _i64(threshold)[None, :]

    def bucket_peaks(self, rows: I64, edges: I64) -> npt.NDArray[np.int64]:
        """Peak usage of each row in each bucket [edges[b], edges[b+1]): shape (rows, buckets)."""
        rows = _i64(rows)
        nb = edges.shape[0] - 1
        if nb <= 0:
            return np.zeros((rows.shape[0], 0), dtype=np.int64)
        r = np.repeat(rows, nb)
        s = np.tile(edges[:-1], rows.shape[0])
        e = np.tile(edges[1:], rows.shape[0])
        return self._peak_exact(r, s, e).reshape(rows.shape[0], nb)

    @property
    def nbytes(self) -> int:
        dec = 0 if self._dec is None else self._dec.nbytes
        grid = 0 if self._grid is None else self._grid.bmax.nbytes
        dirty = sum(a.nbytes + b.nbytes for a, b in self._dirty.values())
        return int(self._keys.nbytes + self._levels.nbytes + dec + grid + dirty)
