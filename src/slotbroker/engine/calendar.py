"""``CalendarIndex``: committed usage over time for every provider x resource class.

Built once from a ``Snapshot`` (vectorised, one sort per class) and then kept current with ``add`` and
``remove`` (one booking), ``add_many``/``remove_many`` (a batch: each touched row rebuilt once),
``shorten`` (an early end releases a booking's tail) and ``drop_past`` (forget what no query about now
or later can see, so the index does not grow and coarsen over months). The caller stamps
``generation`` with the database's calendar generation so it can tell a stale index; the engine
itself never reads it. Site rows hold the *sum* of their hosts' usage, which gives the search an
upper bound on a site's free capacity (peak of a sum <= sum of peaks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from slotbroker.engine.memory import release_free_heap
from slotbroker.engine.snapshot import NO_VLAN, AllocationSnap, Snapshot
from slotbroker.engine.steps import StepTable
from slotbroker.engine.topology import Topology

I64 = npt.NDArray[np.int64]
HOST, LINK, PORT = 0, 1, 2
BANDWIDTH = "BANDWIDTH_GBPS"
VLAN = "VLAN"
UNBOUNDED = int(np.iinfo(np.int64).max)  # a site bound that any need passes
# Builds from at least this many allocation rows give their heap pages back: below it there is little
# to give, and ``malloc_trim`` walks the whole heap holding the allocator's lock, which stalls every
# other thread's allocations in a process with a large heap (seconds in a test run of 1,700 tests)
TRIM_AFTER_ROWS = 100_000


class CalendarIndex:
    def __init__(self, snapshot: Snapshot, generation: int = 0) -> None:
        self.generation = generation
        self._floor = 0  # the latest ``drop_past``
        self.topo = topo = Topology(snapshot)
        al = snapshot.allocations
        n_rows = len(al)
        kind, row = topo.lookup(al.provider) if len(al) else (al.provider, al.provider)
        self.host: dict[str, StepTable] = {}
        self.site: dict[str, StepTable] = {}
        n_h, n_s = len(topo.hosts), len(topo.sites)
        for ci, cname in enumerate(al.classes):
            m = (kind == HOST) & (al.class_idx == ci)
            if m.any():
                r, s, e, a = row[m], al.start[m], al.end[m], al.amount[m]
                self.host[cname] = StepTable.build(n_h, r, s, e, a)
                self.site[cname] = StepTable.build(n_s, topo.host_site[r], s, e, a)
        # sites holding an overbooked host: their summed usage is no upper bound, so tier 1 skips them
        self._over: dict[str, set[int]] = {
            c: t.rows_above(topo.host_cap.get(c, np.zeros(n_h, np.int64))) for c, t in self.host.items()
        }
        self.unbounded: dict[str, set[int]] = {
            c: {int(topo.host_site[r]) for r in rows} for c, rows in self._over.items()
        }
        bw = al.classes.index(BANDWIDTH) if BANDWIDTH in al.classes else -1
        vl = al.classes.index(VLAN) if VLAN in al.classes else -1
        m = (kind == LINK) & (al.class_idx == bw)
        self.link = StepTable.build(len(topo.links), row[m], al.start[m], al.end[m], al.amount[m])
        m = (kind == PORT) & (al.class_idx == bw)
        self.port_bw = StepTable.build(len(topo.ports), row[m], al.start[m], al.end[m], al.amount[m])
        m = (kind == PORT) & (al.class_idx == vl)
        self.port_vlans = StepTable.build(len(topo.ports), row[m], al.start[m], al.end[m], al.amount[m])
        mu = m & (al.vlan == NO_VLAN)
        self.port_untagged = StepTable.build(
            len(topo.ports), row[mu], al.start[mu], al.end[mu], al.amount[mu]
        )
        for t in (*self.host.values(), *self.site.values(), self.link, self.port_bw):
            t.grid()  # dense block maxima, built once here rather than on the first query
        # concrete tags per port: (start, end, tag) rows; -1 tags only count
        self._tags: list[tuple[I64, I64, I64]] = []
        tagged = m & (al.vlan != NO_VLAN)
        for p in range(len(topo.ports)):
            mp = tagged & (row == p)
            self._tags.append((al.start[mp].copy(), al.end[mp].copy(), al.vlan[mp].copy()))
        del kind, row, m, mu, al, tagged
        if n_rows >= TRIM_AFTER_ROWS:
            release_free_heap()  # the build's temporaries were several times the index's size

    # -- updates ---------------------------------------------------------------------------------
    def add(self, alloc: AllocationSnap) -> None:
        self._apply((alloc,), 1)

    def remove(self, alloc: AllocationSnap) -> None:
        self._apply((alloc,), -1)

    def add_many(self, allocs: Sequence[AllocationSnap]) -> None:
        """``add`` for a batch: each touched table row is rebuilt once (``StepTable.add_many``). The
        whole batch is checked first: an unknown provider or a class the provider cannot hold raises
        before anything changes."""
        self._apply(allocs, 1)

    def remove_many(self, allocs: Sequence[AllocationSnap]) -> None:
        """``remove`` for a batch (checked first, like ``add_many``; a concrete VLAN tag that is not
        booked raises ``KeyError`` before anything changes)."""
        self._apply(allocs, -1)

    def update_many(self, added: Sequence[AllocationSnap], removed: Sequence[AllocationSnap]) -> None:
        """``add_many(added)`` then ``remove_many(removed)`` as one batch: a row both add and remove
        touch (a lease cancelled and booked again on the same hosts) is rebuilt once, not twice. The
        step functions are sums, so the order does not matter to them; concrete VLAN tags are handled
        in batch order, adds first, so a tag added here can be removed here. Checked whole first."""
        self._apply([*added, *removed], 1, len(added))

    def shorten(self, alloc: AllocationSnap, new_end: int) -> None:
        """The booking ``alloc`` now ends at ``new_end`` (an early end): its tail [new_end, end) is
        released; ``new_end <= start`` releases all of it, ``new_end > end`` raises ``ValueError``."""
        if new_end > alloc.end_s:
            raise ValueError("shorten cannot lengthen a booking")
        if alloc.vlan_tag is not None and alloc.resource_class == VLAN:
            self._apply((alloc,), -1)  # a concrete tag is kept as (start, end, tag): rewrite the row
            if new_end > alloc.start_s:
                self._apply((replace(alloc, end_s=new_end),), 1)
            return
        if max(new_end, alloc.start_s) < alloc.end_s:
            self._apply((replace(alloc, start_s=max(new_end, alloc.start_s)),), -1)

    def drop_past(self, now: int) -> None:
        """Forget bookings that ended at or before ``now`` and the past of the others
        (``StepTable.drop_past`` on every table), so a long-lived index stays the size of the present
        and its block grids do not coarsen. Queries about times at or after ``now`` answer exactly as
        before (as an index built from the bookings clipped to start at ``now``); queries before
        ``now`` are no longer answered."""
        self._floor = max(self._floor, now)
        for t in self._tables():
            t.drop_past(now)
        self._tags = [(s[e > now], e[e > now], t[e > now]) for s, e, t in self._tags]
        for c, table in self.host.items():
            cap = self.topo.host_cap.get(c, np.zeros(len(self.topo.hosts), np.int64))
            self._over[c] = table.rows_above(cap)
            self.unbounded[c] = {int(self.topo.host_site[r]) for r in self._over[c]}

    def _apply(self, allocs: Sequence[AllocationSnap], sign: int, flip_from: int | None = None) -> None:
        """Add (``sign`` 1) or remove (-1) ``allocs``; from position ``flip_from`` on, the other way."""
        if not allocs:
            return
        flip = len(allocs) if flip_from is None else flip_from
        signs = [sign if i < flip else -sign for i in range(len(allocs))]
        kinds, rows = self.topo.lookup(np.array([a.provider_id for a in allocs], dtype=np.int64))
        hosts: dict[str, list[int]] = {}  # class -> positions in allocs
        links: list[int] = []
        ports_bw: list[int] = []
        ports_vlan: list[int] = []
        tags = list(self._tags)  # rewritten on a copy: a missing tag raises before anything changes
        for i, a in enumerate(allocs):
            kind = int(kinds[i])
            if kind == HOST:
                hosts.setdefault(a.resource_class, []).append(i)
            elif kind == LINK and a.resource_class == BANDWIDTH:
                links.append(i)
            elif kind == PORT and a.resource_class == BANDWIDTH:
                ports_bw.append(i)
            elif kind == PORT and a.resource_class == VLAN:
                ports_vlan.append(i)
                if a.vlan_tag is not None:
                    tags[int(rows[i])] = _tag_rows(tags[int(rows[i])], a, signs[i])
            else:
                raise ValueError(f"class {a.resource_class} cannot be allocated on provider {a.provider_id}")
        cols = _columns(allocs, rows, signs)
        n_h, n_s = len(self.topo.hosts), len(self.topo.sites)
        for cls, at in hosts.items():
            r, st, en, am = (c[at] for c in cols)
            table = self.host.get(cls) or self.host.setdefault(cls, self._empty(n_h))
            _put(table, r, st, en, am)
            site = self.site.get(cls) or self.site.setdefault(cls, self._empty(n_s))
            _put(site, self.topo.host_site[r], st, en, am)
            cap_arr = self.topo.host_cap.get(cls)
            over = self._over.setdefault(cls, set())
            touched = np.unique(r)
            cap = cap_arr[touched] if cap_arr is not None else np.zeros(touched.shape[0], np.int64)
            above = table.rows_max(touched) > cap
            for row, is_over in zip(touched.tolist(), above.tolist(), strict=True):
                if is_over:
                    over.add(row)
                else:
                    over.discard(row)
            flagged = self.unbounded.setdefault(cls, set())
            busy = {int(self.topo.host_site[o]) for o in over}
            for site in np.unique(self.topo.host_site[r]).tolist():
                if site in busy:
                    flagged.add(site)
                else:
                    flagged.discard(site)
        for table, at in ((self.link, links), (self.port_bw, ports_bw), (self.port_vlans, ports_vlan)):
            if at:
                _put(table, *(c[at] for c in cols))
        untagged = [i for i in ports_vlan if allocs[i].vlan_tag is None]
        if untagged:
            _put(self.port_untagged, *(c[untagged] for c in cols))
        self._tags = tags

    def compact(self) -> None:
        """Merge the rows changed since the build (``add_many``, ``remove_many``, ``shorten``) into each
        table's flat arrays (``StepTable.compact``). A table answers a query about its changed ("dirty")
        rows one row at a time, so a caller that changes a few rows and then searches many times (the
        calendar cache after a replay) merges once. Answers are the same either way."""
        for table in self._tables():
            table.compact()

    def _empty(self, n_rows: int) -> StepTable:
        """A new table for a class first booked now, forgetting the past as the others do."""
        table = StepTable(n_rows)
        table.drop_past(self._floor)
        return table

    def _tables(self) -> list[StepTable]:
        return [
            *self.host.values(),
            *self.site.values(),
            self.link,
            self.port_bw,
            self.port_vlans,
            self.port_untagged,
        ]

    # -- queries ---------------------------------------------------------------------------------
    def host_free(self, cls: str, rows: I64, start: int, end: int) -> I64:
        """Capacity minus peak usage over [start, end) for each host row (0 where no inventory)."""
        cap = self.topo.host_cap.get(cls)
        if cap is None:
            return np.zeros(rows.shape[0], dtype=np.int64)
        table = self.host.get(cls)
        used = table.peak(rows, start, end) if table is not None else 0
        return np.asarray(cap[rows] - used, dtype=np.int64)

    def site_free_bound(self, cls: str, rows: I64, start: int, end: int) -> I64:
        """Upper bound of what the site rows' hosts have free over [start, end)."""
        cap = self.topo.site_cap.get(cls)
        if cap is None:
            return np.zeros(rows.shape[0], dtype=np.int64)
        table = self.site.get(cls)
        used = table.peak(rows, start, end) if table is not None else 0
        free = np.asarray(cap[rows] - used, dtype=np.int64)
        loose = self.unbounded.get(cls)
        if loose:
            free[np.isin(rows, np.array(sorted(loose), dtype=np.int64))] = UNBOUNDED
        return free

    def link_free(self, rows: I64, start: int, end: int) -> I64:
        return np.asarray(self.topo.link_cap[rows] - self.link.peak(rows, start, end), dtype=np.int64)

    def port_bw_free(self, row: int, start: int, end: int) -> int:
        r = np.array([row], dtype=np.int64)
        return int(self.topo.port_cap[row] - self.port_bw.peak(r, start, end)[0])

    def tags_in_use(self, port_row: int, start: int, end: int) -> set[int]:
        """Concrete VLAN tags booked on the port at any time in [start, end)."""
        s, e, t = self._tags[port_row]
        return {int(x) for x in t[(s < end) & (e > start)]}

    def untagged_vlans(self, port_row: int, start: int, end: int) -> int:
        """Peak of VLAN allocations that name no concrete tag: each still uses up some tag."""
        return int(self.port_untagged.peak(np.array([port_row], dtype=np.int64), start, end)[0])

    def next_tag_end(self, port_rows: I64, t: int) -> int | None:
        """The first time at or after ``t`` when a concrete tag's booking on one of the ports ends.
        A tag can free while the port's count of VLAN rows stays level (another tag taken at the same
        instant, or the same tag booked twice), so a request naming tags needs these times as well as
        the count's decreases."""
        found = [int(e[e >= t].min()) for e in (self._tags[int(r)][1] for r in port_rows) if (e >= t).any()]
        return min(found) if found else None

    def tags_blocked_until(self, port_row: int, start: int, end: int) -> dict[int, int]:
        """Each concrete tag booked on the port at any time in [start, end): the latest end among its
        bookings that overlap it (``tag_blocked_until`` for every busy tag at once)."""
        s, e, t = self._tags[port_row]
        m = (s < end) & (e > start)
        out: dict[int, int] = {}
        for tag, until in zip(t[m].tolist(), e[m].tolist(), strict=True):
            if until > out.get(tag, until - 1):
                out[tag] = until
        return out

    def tag_blocked_until(self, port_row: int, tag: int, start: int, end: int) -> int | None:
        """Latest end among bookings of ``tag`` overlapping [start, end), or None when it is free."""
        s, e, t = self._tags[port_row]
        m = (t == tag) & (s < end) & (e > start)
        return int(e[m].max()) if m.any() else None

    def nbytes(self) -> int:
        tags = sum(a.nbytes + b.nbytes + c.nbytes for a, b, c in self._tags)
        return sum(t.nbytes for t in self._tables()) + tags


def _columns(allocs: Sequence[AllocationSnap], rows: I64, signs: Sequence[int]) -> tuple[I64, I64, I64, I64]:
    """The batch as (row, start, end, signed amount) arrays."""
    start = np.array([a.start_s for a in allocs], dtype=np.int64)
    end = np.array([a.end_s for a in allocs], dtype=np.int64)
    amount = np.array([s * a.amount for s, a in zip(signs, allocs, strict=True)], dtype=np.int64)
    return np.asarray(rows, dtype=np.int64), start, end, amount


def _put(table: StepTable, rows: I64, start: I64, end: I64, amount: I64) -> None:
    """One allocation through ``add`` (no batch bookkeeping), more through ``add_many``; a
    differential test holds the two equal."""
    if rows.shape[0] == 1:
        table.add(int(rows[0]), int(start[0]), int(end[0]), int(amount[0]))
    else:
        table.add_many(rows, start, end, amount)


def _tag_rows(tags: tuple[I64, I64, I64], a: AllocationSnap, sign: int) -> tuple[I64, I64, I64]:
    """One port's concrete-tag rows with ``a`` added (``sign`` 1) or its first copy removed."""
    s, e, t = tags
    tag = -1 if a.vlan_tag is None else a.vlan_tag
    if sign > 0:
        return np.append(s, a.start_s), np.append(e, a.end_s), np.append(t, tag)
    hit = np.nonzero((s == a.start_s) & (e == a.end_s) & (t == tag))[0]
    if hit.size == 0:
        raise KeyError("no such VLAN allocation to remove")
    keep = np.ones(s.shape[0], dtype=bool)
    keep[hit[0]] = False
    return s[keep], e[keep], t[keep]
