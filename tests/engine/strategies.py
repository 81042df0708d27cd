"""Hypothesis strategies: small random topologies, bookings and requests on an hourly grid."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from slotbroker.domain.request import SlotRequest, parse_request
from slotbroker.domain.vlans import VlanSet
from slotbroker.engine import (
    AllocationSnap,
    AllocationTable,
    HostSnap,
    InventorySnap,
    LinkSnap,
    PortSnap,
    SiteSnap,
    Snapshot,
)

H = 3600
POLICIES = ["earliest", "first_fit", "best_fit", "spread", "latency", "least_gap"]
T0 = 1_700_000_000 - (1_700_000_000 % H)


def iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


@st.composite
def worlds(draw: st.DrawFn) -> Snapshot:
    n_sites = draw(st.sampled_from([1, 2, 2, 3, 3]))
    sites = tuple(SiteSnap(f"S{i}") for i in range(n_sites))
    hosts = []
    for i in range(draw(st.integers(1, 3))):
        inv = {"VCPU": InventorySnap(draw(st.sampled_from([2, 4, 8])))}
        if draw(st.booleans()):
            inv["GPU_A30"] = InventorySnap(draw(st.integers(1, 2)))
        traits = frozenset(draw(st.sets(st.sampled_from(["NET_P4", "HW_NIC_RDMA"]), max_size=1)))
        hosts.append(
            HostSnap(i + 1, f"h{i}", f"S{draw(st.integers(0, n_sites - 1))}", traits=traits, inventories=inv)
        )
    links = []
    if n_sites > 1:
        for j in range(draw(st.integers(1, 3))):
            a, b = draw(st.sampled_from([(x, y) for x in range(n_sites) for y in range(x + 1, n_sites)]))
            links.append(
                LinkSnap(
                    100 + j,
                    f"L{j}",
                    f"S{a}",
                    f"S{b}",
                    draw(st.integers(1, 10)),
                    float(draw(st.integers(1, 10))),
                )
            )
    ports = []
    if draw(st.booleans()):
        ports.append(
            PortSnap(200, f"S{draw(st.integers(0, n_sites - 1))}", "fp", VlanSet.parse("100-102"), 10)
        )
    allocs = []
    for _ in range(draw(st.integers(0, 14))):
        start = T0 + H * draw(st.integers(0, 8))
        end = start + H * draw(st.integers(1, 6))
        kind = draw(st.sampled_from(["host", "host", "host", "link", "port"]))
        if kind == "host":
            h = draw(st.sampled_from(hosts))
            rc = draw(st.sampled_from(sorted(h.inventories)))
            allocs.append(
                AllocationSnap(h.id, rc, draw(st.integers(1, h.inventories[rc].capacity)), start, end)
            )
        elif kind == "link" and links:
            lk = draw(st.sampled_from(links))
            allocs.append(
                AllocationSnap(lk.id, "BANDWIDTH_GBPS", draw(st.integers(1, lk.capacity_gbps)), start, end)
            )
        elif kind == "port" and ports:
            if draw(st.booleans()):
                allocs.append(AllocationSnap(200, "VLAN", 1, start, end, draw(st.integers(100, 102))))
            else:
                allocs.append(AllocationSnap(200, "BANDWIDTH_GBPS", draw(st.integers(1, 10)), start, end))
    return Snapshot(tuple(hosts), sites, tuple(links), tuple(ports), AllocationTable.from_rows(allocs))


@st.composite
def requests(draw: st.DrawFn, snap: Snapshot, fixed: bool = True) -> SlotRequest:
    comps: list[dict[str, Any]] = []
    for i in range(draw(st.sampled_from([1, 2, 2]))):
        res = {"VCPU": draw(st.integers(1, 4))}
        if draw(st.integers(0, 3)) == 0:
            res["GPU_A30"] = 1
        c: dict[str, Any] = {"name": f"c{i}", "count": draw(st.integers(1, 2)), "resources": res}
        if draw(st.integers(0, 3)) == 0:
            c["site"] = draw(st.sampled_from(snap.sites)).name
        if draw(st.integers(0, 4)) == 0:
            c["required_traits"] = ["NET_P4"]
        comps.append(c)
    doc: dict[str, Any] = {
        "components": comps,
        "limit": draw(st.integers(1, 3)),
        "policy": draw(st.sampled_from(POLICIES)),
    }
    if len(comps) == 2:
        g = draw(st.sampled_from([None, "same_site", "different_sites", "spread"]))
        if g:
            doc["groups"] = [{"kind": g, "components": ["c0", "c1"]}]
        if snap.links and draw(st.integers(0, 2)) > 0:
            lk: dict[str, Any] = {"a": "c0", "b": "c1", "bandwidth_gbps": draw(st.integers(1, 6))}
            if draw(st.booleans()):
                lk["max_latency_ms"] = float(draw(st.integers(1, 12)))
            doc["links"] = [lk]
    if len(snap.ports) > 0 and draw(st.booleans()):
        port = snap.ports[0]
        doc["facility_ports"] = [
            {
                "site": port.site,
                "port": port.name,
                "component": "c0",
                "vlan_count": draw(st.integers(1, 2)),
                "bandwidth_gbps": draw(st.integers(0, 4)),
            }
        ]
    start = T0 + H * draw(st.integers(0, 2))
    doc["earliest_start"] = iso(start)
    doc["latest_end"] = iso(start + H * draw(st.integers(6, 30)))
    if fixed:
        doc["duration"] = H * draw(st.integers(1, 4))
    else:
        doc["min_duration"] = H * draw(st.integers(1, 2))
        doc["max_duration"] = H * draw(st.integers(2, 5))
    return parse_request(doc)


# -- the whole valid input space (for "the engine never raises"), not only what the reference is fast on --

EPOCH_END = 253_402_300_799  # 9999-12-31T23:59:59Z: the last instant a request can name
FAR = [-62_135_596_800, 0, T0 - 400 * 86400, EPOCH_END, 2**40, 2**62]  # what old store rows may hold
HUGE = 2**53  # the largest amount validation admits


@st.composite
def wild_worlds(draw: st.DrawFn) -> Snapshot:
    """``worlds()`` plus what a store can hold: sites without hosts, hosts without inventory or with
    huge capacities, and bookings from before the epoch or far past any request (or both)."""
    base = draw(worlds())
    sites = base.sites + ((SiteSnap("EMPTY"),) if draw(st.booleans()) else ())
    hosts = list(base.hosts)
    if draw(st.booleans()):
        hosts.append(HostSnap(50, "bare", sites[0].name))  # no inventory at all
    if draw(st.booleans()):
        cap = draw(st.sampled_from([HUGE - 1, HUGE, 2**62]))
        for i in range(draw(st.integers(1, 3))):
            inv = {"VCPU": InventorySnap(cap)}
            hosts.append(HostSnap(51 + i, f"big{i}", sites[-1].name, inventories=inv))
    allocs = list(base.allocations.rows())
    for _ in range(draw(st.integers(0, 3))):
        h = draw(st.sampled_from(base.hosts))
        rc = draw(st.sampled_from(sorted(h.inventories)))
        start = draw(st.sampled_from([*FAR[:3], T0 + H * draw(st.integers(0, 8))]))
        end = draw(st.sampled_from([T0 + H * draw(st.integers(1, 10)), *FAR[3:]]))
        if end > start:
            amount = draw(st.integers(1, h.inventories[rc].capacity))
            allocs.append(AllocationSnap(h.id, rc, amount, start, end))
    return Snapshot(tuple(hosts), sites, base.links, base.ports, AllocationTable.from_rows(allocs))


@st.composite
def wild_documents(draw: st.DrawFn, snap: Snapshot) -> dict[str, Any]:
    """Find-slot documents over the whole valid range (and a little outside it, so validation is
    exercised too): empty resources pinned to a site or host, links only, ports only, elastic,
    tiny and huge amounts and counts, duplicate names, extreme but valid time windows."""
    names = draw(st.lists(st.sampled_from(["c0", "c1", "c2"]), min_size=1, max_size=3, unique=True))
    if draw(st.integers(0, 19)) == 0:
        names.append(names[0])  # a duplicate name: validation must refuse it with a pointer
    comps: list[dict[str, Any]] = []
    for name in names:
        c: dict[str, Any] = {"name": name, "count": draw(st.sampled_from([1, 1, 1, 1, 2, 3, 17, 1000, 0]))}
        kind = draw(st.sampled_from(["small", "small", "small", "empty", "empty", "huge", "elastic"]))
        if kind == "small":
            c["resources"] = {"VCPU": draw(st.integers(1, 4))}
            if draw(st.integers(0, 3)) == 0:
                c["resources"]["GPU_A30"] = 1
        elif kind == "empty":
            c["resources"] = {}
        elif kind == "huge":
            c["resources"] = {"VCPU": draw(st.sampled_from([HUGE, HUGE - 1, 2**31, 2**32 + 1]))}
        else:
            lo = draw(st.integers(1, 4))
            c["elastic"] = {"VCPU": {"min": lo, "max": draw(st.sampled_from([lo, lo + 3, HUGE]))}}
        pin = draw(
            st.sampled_from(
                ["none", "site", "site", "host"] if kind == "empty" else ["none"] * 3 + ["site", "host"]
            )
        )
        if pin == "site":
            c["site"] = draw(st.sampled_from(snap.sites)).name
        elif pin == "host" and snap.hosts:
            c["host"] = draw(st.sampled_from(snap.hosts)).name
        comps.append(c)
    doc: dict[str, Any] = {
        "components": comps,
        "limit": draw(st.sampled_from([1, 2, 50])),
        "alternates": draw(st.sampled_from([0, 3, 20])),
        "policy": draw(st.sampled_from(POLICIES)),
    }
    if len(names) >= 2:
        g = draw(st.sampled_from([None, "same_site", "different_sites", "spread"]))
        if g:
            doc["groups"] = [{"kind": g, "components": names[:2]}]
        if draw(st.booleans()):
            lk: dict[str, Any] = {"a": names[0], "b": names[1], "bandwidth_gbps": draw(st.integers(1, 12))}
            if draw(st.booleans()):
                lk["max_latency_ms"] = float(draw(st.sampled_from([0.5, 5, 100_000])))
            doc["links"] = [lk]
    if len(snap.ports) > 0 and draw(st.booleans()):
        port = snap.ports[0]
        fp: dict[str, Any] = {
            "site": port.site,
            "port": port.name,
            "component": draw(st.sampled_from(names)),
            "bandwidth_gbps": draw(st.sampled_from([0, 1, 10, 11])),
        }
        if draw(st.booleans()):
            fp["vlans"] = draw(st.sampled_from([[100], [101, 102], [4094]]))
        else:
            fp["vlan_count"] = draw(st.sampled_from([1, 3, 4]))
        doc["facility_ports"] = [fp] * draw(st.integers(1, 2))
    start = draw(
        st.sampled_from([T0, T0, T0, T0 + H, 0, 86_400, EPOCH_END - 90 * 86400, EPOCH_END - 3 * H, 2**34])
    )
    span = draw(st.sampled_from([H, 6 * H, 12 * H, 30 * H, 90 * 86400]))
    end = min(start + span, EPOCH_END)
    doc["earliest_start"] = iso(start)
    doc["latest_end"] = iso(end)
    if draw(st.booleans()):
        doc["duration"] = draw(st.sampled_from([1, H, H, 2 * H, end - start]))
    else:
        doc["min_duration"] = draw(st.sampled_from([1, H]))
        doc["max_duration"] = draw(st.sampled_from([H, 2 * H, 10**12]))
    return doc
