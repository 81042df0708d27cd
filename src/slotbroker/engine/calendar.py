"""``CalendarIndex``: committed usage over time for every provider x resource class.

Built once from a ``Snapshot`` (vectorised, one sort per class) and then kept current with ``add`` and
``remove``. The caller stamps ``generation`` with the database's calendar generation so it can tell a
stale index; the engine itself never reads it. Site rows hold the *sum* of their hosts' usage, which
gives the search an upper bound on a site's free capacity (peak of a sum <= sum of peaks).
"""

from __future__ import annotations

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


class CalendarIndex:
    def __init__(self, snapshot: Snapshot, generation: int = 0) -> None:
        self.generation = generation
        self.topo = topo = Topology(snapshot)
        al = snapshot.allocations
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
        release_free_heap()  # the build's temporaries were several times the index's size

    # -- updates ---------------------------------------------------------------------------------
    def add(self, alloc: AllocationSnap) -> None:
        self._apply(alloc, 1)

    def remove(self, alloc: AllocationSnap) -> None:
        self._apply(alloc, -1)

    def _apply(self, a: AllocationSnap, sign: int) -> None:
        kinds, rows = self.topo.lookup(np.array([a.provider_id], dtype=np.int64))
        kind, row = int(kinds[0]), int(rows[0])
        amount = sign * a.amount
        if kind == HOST:
            n_h, n_s = len(self.topo.hosts), len(self.topo.sites)
            table = self.host.setdefault(a.resource_class, StepTable(n_h))
            table.add(row, a.start_s, a.end_s, amount)
            site = int(self.topo.host_site[row])
            cap_arr = self.topo.host_cap.get(a.resource_class)
            cap = int(cap_arr[row]) if cap_arr is not None else 0
            over = self._over.setdefault(a.resource_class, set())
            if table.row_max(row) > cap:
                over.add(row)
            else:
                over.discard(row)
            flagged = self.unbounded.setdefault(a.resource_class, set())
            if any(int(self.topo.host_site[r]) == site for r in over):
                flagged.add(site)
            else:
                flagged.discard(site)
            self.site.setdefault(a.resource_class, StepTable(n_s)).add(site, a.start_s, a.end_s, amount)
        elif kind == LINK and a.resource_class == BANDWIDTH:
            self.link.add(row, a.start_s, a.end_s, amount)
        elif kind == PORT and a.resource_class == BANDWIDTH:
            self.port_bw.add(row, a.start_s, a.end_s, amount)
        elif kind == PORT and a.resource_class == VLAN:
            self.port_vlans.add(row, a.start_s, a.end_s, amount)
            if a.vlan_tag is None:
                self.port_untagged.add(row, a.start_s, a.end_s, amount)
            else:
                s, e, t = self._tags[row]
                if sign > 0:
                    self._tags[row] = (
                        np.append(s, a.start_s),
                        np.append(e, a.end_s),
                        np.append(t, a.vlan_tag),
                    )
                else:
                    hit = np.nonzero((s == a.start_s) & (e == a.end_s) & (t == a.vlan_tag))[0]
                    if hit.size == 0:
                        raise KeyError("no such VLAN allocation to remove")
                    keep = np.ones(s.shape[0], dtype=bool)
                    keep[hit[0]] = False
                    self._tags[row] = (s[keep], e[keep], t[keep])
        else:
            raise ValueError(f"class {a.resource_class} cannot be allocated on provider {a.provider_id}")

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

    def tag_blocked_until(self, port_row: int, tag: int, start: int, end: int) -> int | None:
        """Latest end among bookings of ``tag`` overlapping [start, end), or None when it is free."""
        s, e, t = self._tags[port_row]
        m = (t == tag) & (s < end) & (e > start)
        return int(e[m].max()) if m.any() else None

    def nbytes(self) -> int:
        tabs = [
            *self.host.values(),
            *self.site.values(),
            self.link,
            self.port_bw,
            self.port_vlans,
            self.port_untagged,
        ]
        return sum(t.nbytes for t in tabs) + sum(a.nbytes + b.nbytes + c.nbytes for a, b, c in self._tags)
