"""The find-slot request a lease stands for (services/booking/lease_shape.py), read through the
per-topology ``HostMaps`` and the lease's summed ``vectors``: a hypothesis property holds ``shape``,
``by_component``, ``held`` and ``hosts_only`` equal to plain scans of every host and row (what they
computed before the maps), and the maps follow a new topology instead of answering the last one's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from slotbroker.domain.providers import ProviderKind
from slotbroker.engine.snapshot import HostSnap
from slotbroker.services.booking.lease_shape import LeaseRead, by_component, held, host_maps, shape


class Row(NamedTuple):  # the columns of ``rows_from`` the shape reads
    resource_class: str
    amount: int
    vlan_tag: int | None
    pid: int
    uuid: str
    name: str
    kind: str


def lease_of(rows: Sequence[Row]) -> LeaseRead:
    return LeaseRead("l", 1, "l", "p", "pending", 100, 200, 1, tuple(rows), 7)


# -- the plain scans (the shape's definitions before the maps) ------------------------------------------
def plain_held(lease: LeaseRead) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = defaultdict(dict)
    for r in lease.rows:
        out[int(r.pid)][r.resource_class] = out[int(r.pid)].get(r.resource_class, 0) + int(r.amount)
    return dict(out)


def plain_by_component(
    lease: LeaseRead, hosts: Sequence[HostSnap], host_row: dict[str, int], swap: bool
) -> dict[str, list[int]]:
    vectors = plain_held(lease)
    snaps = {h.id: h for h in (hosts[i] for i in host_row.values()) if h.id in vectors}
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for pid in sorted(vectors, key=lambda p: snaps[p].name if p in snaps else str(p)):
        h = snaps[pid]
        key = (h.site, h.traits, tuple(sorted(vectors[pid].items()))) if swap else (h.name,)
        groups[key].append(pid)
    return {f"c{i}": pids for i, pids in enumerate(groups.values())}


def plain_shape(
    lease: LeaseRead, hosts: Sequence[HostSnap], host_row: dict[str, int], swap: bool
) -> list[dict[str, Any]]:
    vectors = plain_held(lease)
    by_id = {hosts[i].id: hosts[i] for i in host_row.values()}
    out: list[dict[str, Any]] = []
    for comp, pids in plain_by_component(lease, hosts, host_row, swap).items():
        h = by_id[pids[0]]
        doc: dict[str, Any] = {"name": comp, "count": len(pids), "resources": dict(vectors[pids[0]])}
        if swap:
            others = {t for x in hosts if x.site == h.site for t in x.traits}
            doc.update(
                site=h.site, required_traits=sorted(h.traits), forbidden_traits=sorted(others - h.traits)
            )
        else:
            doc["host"] = h.name
        out.append(doc)
    return out


TRAITS = ["CUSTOM_A", "CUSTOM_B", "CUSTOM_C"]


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[HostSnap], dict[str, int], LeaseRead]:
    n = draw(st.integers(1, 8))
    hosts = [
        HostSnap(
            id=10 + i,
            name=f"h{i:02d}",
            site=draw(st.sampled_from(["s1", "s2"])),
            traits=frozenset(draw(st.sets(st.sampled_from(TRAITS), max_size=2))),
        )
        for i in range(n)
    ]
    host_row = {h.name: i for i, h in enumerate(hosts)}
    held_on = draw(st.lists(st.sampled_from(hosts), min_size=1, max_size=2 * n))  # a host may repeat
    rows = [
        Row(
            draw(st.sampled_from(["VCPU", "MEMORY_MB"])),
            draw(st.integers(1, 3)),
            None,
            h.id,
            f"u{h.id}",
            h.name,
            ProviderKind.HOST.value,
        )
        for h in held_on
    ]
    return hosts, host_row, lease_of(rows)


@settings(max_examples=200, deadline=None)
@given(worlds(), st.booleans())
def test_shape_through_the_maps_equals_the_plain_scans(
    world: tuple[list[HostSnap], dict[str, int], LeaseRead], swap: bool
) -> None:
    hosts, host_row, lease = world
    assert held(lease) == plain_held(lease)
    assert by_component(lease, hosts, host_row, swap) == plain_by_component(lease, hosts, host_row, swap)
    assert shape(lease, hosts, host_row, swap) == plain_shape(lease, hosts, host_row, swap)
    assert host_maps(hosts, host_row).ids == {h.id for h in hosts}


def test_held_is_a_copy_the_caller_may_change() -> None:
    lease = lease_of([Row("VCPU", 2, None, 10, "u10", "h00", ProviderKind.HOST.value)])
    got = held(lease)
    got[10]["VCPU"] = 99
    assert held(lease) == {10: {"VCPU": 2}}


def test_hosts_only_refuses_other_kinds_and_vlan_tags() -> None:
    host = Row("VCPU", 1, None, 10, "u10", "h00", ProviderKind.HOST.value)
    assert lease_of([host]).hosts_only
    assert not lease_of([host, host._replace(kind=ProviderKind.LINK.value)]).hosts_only
    assert not lease_of([host, host._replace(vlan_tag=5)]).hosts_only


def test_maps_follow_a_new_topology() -> None:
    """A topology rebuilt (new objects, same host names) gets its own maps: answering the last one's
    would name hosts by ids or traits that are gone."""
    old = [HostSnap(id=1, name="h1", site="s1", traits=frozenset({"CUSTOM_A"}))]
    new = [HostSnap(id=2, name="h1", site="s1", traits=frozenset({"CUSTOM_B"}))]
    old_row, new_row = {"h1": 0}, {"h1": 0}
    assert set(host_maps(old, old_row).by_id) == {1}
    assert set(host_maps(new, new_row).by_id) == {2}
    assert host_maps(new, new_row).site_traits == {"s1": frozenset({"CUSTOM_B"})}
    assert set(host_maps(old, old_row).by_id) == {1}
