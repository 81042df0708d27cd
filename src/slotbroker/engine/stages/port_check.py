"""Stage 2: facility ports. Bandwidth and concrete VLAN tags must be free for the whole window; the
tags are chosen here (lowest free first, so answers are deterministic). Independent of placement,
so it runs before any host work and, when it fails, says how far to skip."""

from __future__ import annotations

from collections import defaultdict

from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.plan import Plan
from slotbroker.engine.stages.base import NEVER, Reason, Rejection

READS = frozenset({"port.bandwidth_calendar", "port.vlan_calendar", "port.vlan_tags"})


def check_ports(
    index: CalendarIndex, plan: Plan, s: int, e: int
) -> tuple[dict[int, list[int]], Rejection | None]:
    """VLAN tags per port request, or the first port that blocks with a retry lower bound."""
    tags_out: dict[int, list[int]] = {}
    bw_taken: dict[int, int] = defaultdict(int)
    tags_taken: dict[int, set[int]] = defaultdict(set)
    d, latest = e - s, plan.latest_start
    for p in plan.ports:
        if p.row < 0:
            return {}, Rejection(Reason.UNKNOWN_PORT, port=p.label, retry_at=NEVER)
        port = index.topo.ports[p.row]
        if p.gbps:
            free = index.port_bw_free(p.row, s, e) - bw_taken[p.row]
            if free < p.gbps:
                cap = int(index.topo.port_cap[p.row])
                lb = index.port_bw.earliest_fit(p.row, s + 1, d, cap - p.gbps - bw_taken[p.row], latest)
                return {}, Rejection(
                    Reason.PORT_BANDWIDTH, port=p.label, retry_at=NEVER if lb is None else lb
                )
            bw_taken[p.row] += p.gbps
        busy = index.tags_in_use(p.row, s, e) | tags_taken[p.row]
        untagged = index.untagged_vlans(p.row, s, e)
        if p.tags is not None:
            if any(t not in port.vlans for t in p.tags):
                return {}, Rejection(Reason.VLAN_UNAVAILABLE, port=p.label, retry_at=NEVER)
            blocked = [t for t in p.tags if t in busy]
            if blocked or len(port.vlans) - len(busy) - untagged < len(p.tags):
                ends = [index.tag_blocked_until(p.row, t, s, e) for t in blocked]
                lb = max([x for x in ends if x is not None] + [s + 1])
                return {}, Rejection(Reason.VLAN_UNAVAILABLE, port=p.label, retry_at=lb)
            chosen = list(p.tags)
        else:
            if len(port.vlans) - len(busy & set(port.vlans)) - untagged < p.count:
                cap = len(port.vlans) - p.count - len(tags_taken[p.row])
                return {}, Rejection(
                    Reason.VLAN_UNAVAILABLE, port=p.label, retry_at=_vlans_free_from(index, p.row, s, e, cap)
                )
            chosen = []
            for t in port.vlans:
                if t not in busy:
                    chosen.append(t)
                    if len(chosen) == p.count:
                        break
        tags_taken[p.row].update(chosen)
        tags_out[p.idx] = chosen
    return tags_out, None


def _vlans_free_from(index: CalendarIndex, row: int, s: int, e: int, cap: int) -> int:
    """A lower bound on the first start after ``s`` where at most ``cap`` of the port's tags are busy.

    A tag booked over [s, e) until ``u`` is busy at every start before ``u`` (that booking began before
    ``e``, so it overlaps any window starting in [s, u)). So while more than ``cap`` such tags are held
    past ``t``, nothing fits at ``t``: the bound is the (cap+1)-th latest of those ends. It counts
    distinct tags of the port's range, so a tag booked twice or one the range no longer holds (an
    overbooked or edited port) cannot push it past the true answer, as a count of VLAN rows would.
    Bookings that start later, and untagged ones, only make the true answer later."""
    if cap < 0:
        return NEVER
    vlans = index.topo.ports[row].vlans
    ends = sorted((u for tag, u in index.tags_blocked_until(row, s, e).items() if tag in vlans), reverse=True)
    return max(s + 1, ends[cap]) if len(ends) > cap else s + 1
