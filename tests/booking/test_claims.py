"""Claims on real databases (SQLite and PostgreSQL through the ``db`` fixture): capacity over whole
intervals, unit rules, VLAN tags, expired holds, idempotent release, and a hypothesis property that
compares the service with a brute-force reference on every integer second.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from slotbroker.domain.claims import (
    ClaimItem,
    ClaimRequest,
    ConsumerKind,
    ConsumerSpec,
    ConsumerStatus,
)
from slotbroker.domain.errors import (
    AlreadyExists,
    CapacityConflict,
    FieldError,
    NotFound,
    SlotbrokerError,
    ValidationFailed,
)
from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import ProviderKind
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.inventory.network import NetworkService
from slotbroker.services.inventory.service import InventoryService
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.store.models import AllocationRow, ConsumerRow
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire import providers as cmd

T0 = 1_900_000_000  # claims happen around here; "now" is a little before unless a test moves it
NOW = T0 - 1000
_names = itertools.count()


# -- helpers -----------------------------------------------------------------------------------------------


def make_site(db: Database, name: str | None = None) -> tuple[str, str]:
    name = name or f"SITE{next(_names)}"
    view = InventoryService(db).create_provider(cmd.CreateProvider(name=name, kind=ProviderKind.SITE))
    return view.uuid, name


def make_host(db: Database, site_uuid: str, inventories: dict[str, Inventory]) -> str:
    body = cmd.CreateProvider(
        name=f"host{next(_names)}",
        kind=ProviderKind.HOST,
        parent_uuid=site_uuid,  # pydantic parses the str
        inventories=inventories,
    )
    return InventoryService(db).create_provider(body).uuid


def make_port(db: Database, site_name: str, vlans: str, bandwidth: int = 100) -> str:
    body = cmd.CreateFacilityPort(
        name=f"port{next(_names)}", site=site_name, vlans=vlans, bandwidth_gbps=bandwidth
    )
    return NetworkService(db).create_port(body).uuid


def make_link(db: Database, a: str, b: str, bandwidth: int) -> str:
    body = cmd.CreateLink(name=f"link{next(_names)}", endpoints=(a, b), bandwidth_gbps=bandwidth)
    return NetworkService(db).create_link(body).uuid


def lease(*items: ClaimItem, start: int = T0, end: int = T0 + 10, uuid: str | None = None) -> ClaimRequest:
    spec = ConsumerSpec(ConsumerKind.LEASE, "science", start, end, uuid=uuid)
    return ClaimRequest(spec, tuple(items))


def hold(*items: ClaimItem, start: int = T0, end: int = T0 + 10, expires: int = NOW + 60) -> ClaimRequest:
    spec = ConsumerSpec(ConsumerKind.HOLD, "science", start, end, expires_s=expires)
    return ClaimRequest(spec, tuple(items))


def audit_clean(db: Database) -> None:
    with UnitOfWork(db, readonly=True) as uow:
        assert uow.allocations.overbooked() == []
        assert uow.allocations.vlan_clashes() == []


def generation(db: Database) -> int:
    with UnitOfWork(db, readonly=True) as uow:
        return uow.calendar.generation()


def conflict(svc: ClaimService, request: ClaimRequest, now: int = NOW) -> list[FieldError]:
    with pytest.raises(CapacityConflict) as info:
        svc.claim(request, now_s=now)
    assert info.value.code == "capacity_conflict"
    return info.value.errors


def invalid(svc: ClaimService, request: ClaimRequest, now: int = NOW) -> list[FieldError]:
    with pytest.raises(ValidationFailed) as info:
        svc.claim(request, now_s=now)
    return info.value.errors


@pytest.fixture
def site(db: Database) -> tuple[str, str]:
    return make_site(db)


@pytest.fixture
def host(db: Database, site: tuple[str, str]) -> str:
    """VCPU capacity 8, MEMORY_MB capacity 12 (total 10, reserved 2, ratio 1.5), GPU_A30 capacity 2."""
    return make_host(
        db,
        site[0],
        {
            "VCPU": Inventory(total=8),
            "MEMORY_MB": Inventory(total=10, reserved=2, allocation_ratio=1.5),
            "GPU_A30": Inventory(total=2),
        },
    )


@pytest.fixture
def svc(db: Database) -> ClaimService:
    return ClaimService(db)


# -- capacity ----------------------------------------------------------------------------------------------


def test_fits_exactly_at_capacity(db: Database, svc: ClaimService, host: str) -> None:
    before = generation(db)
    result = svc.claim(
        lease(
            ClaimItem(host, "VCPU", 8),
            ClaimItem(host, "MEMORY_MB", 10),  # max_unit defaults to total (10)
            ClaimItem(host, "MEMORY_MB", 2),
            ClaimItem(host, "GPU_A30", 2),
        ),
        now_s=NOW,
    )
    assert result.allocations == 4
    assert result.status == "PENDING"
    assert result.attempts == 1
    assert generation(db) == before + 1
    with UnitOfWork(db, readonly=True) as uow:
        rows = uow.session.scalars(select(AllocationRow).order_by(AllocationRow.resource_class)).all()
        assert sorted((r.resource_class, r.amount, r.start_s, r.end_s) for r in rows) == [
            ("GPU_A30", 2, T0, T0 + 10),
            ("MEMORY_MB", 2, T0, T0 + 10),
            ("MEMORY_MB", 10, T0, T0 + 10),
            ("VCPU", 8, T0, T0 + 10),
        ]
    audit_clean(db)


def test_one_unit_over_names_the_item(db: Database, svc: ClaimService, host: str) -> None:
    svc.claim(lease(ClaimItem(host, "VCPU", 6)), now_s=NOW)
    before = generation(db)
    errors = conflict(svc, lease(ClaimItem(host, "MEMORY_MB", 10), ClaimItem(host, "VCPU", 3)))
    assert [e.pointer for e in errors] == ["/items/1"]
    assert "VCPU" in errors[0].detail
    assert "peak usage 6" in errors[0].detail
    assert "capacity 8" in errors[0].detail
    assert generation(db) == before  # nothing committed
    with UnitOfWork(db, readonly=True) as uow:
        assert uow.allocations.count() == 1


def test_items_on_one_class_add_up(svc: ClaimService, host: str) -> None:
    errors = conflict(svc, lease(ClaimItem(host, "VCPU", 4), ClaimItem(host, "VCPU", 5)))
    assert [e.pointer for e in errors] == ["/items/0", "/items/1"]
    svc.claim(lease(ClaimItem(host, "VCPU", 4), ClaimItem(host, "VCPU", 4)), now_s=NOW)


def test_half_open_intervals_back_to_back_both_fit(db: Database, svc: ClaimService, host: str) -> None:
    svc.claim(lease(ClaimItem(host, "VCPU", 8), start=T0, end=T0 + 10), now_s=NOW)
    svc.claim(lease(ClaimItem(host, "VCPU", 8), start=T0 + 10, end=T0 + 20), now_s=NOW)
    svc.claim(lease(ClaimItem(host, "VCPU", 8), start=T0 - 10, end=T0), now_s=NOW)
    conflict(svc, lease(ClaimItem(host, "VCPU", 1), start=T0 + 9, end=T0 + 11))
    audit_clean(db)


def test_partial_overlap_counts(svc: ClaimService, host: str) -> None:
    svc.claim(lease(ClaimItem(host, "VCPU", 5), start=T0, end=T0 + 10), now_s=NOW)
    errors = conflict(svc, lease(ClaimItem(host, "VCPU", 4), start=T0 + 5, end=T0 + 15))
    assert "peak usage 5" in errors[0].detail
    svc.claim(lease(ClaimItem(host, "VCPU", 3), start=T0 + 5, end=T0 + 15), now_s=NOW)
    svc.claim(lease(ClaimItem(host, "VCPU", 5), start=T0 + 10, end=T0 + 20), now_s=NOW)


def test_peak_inside_the_interval_is_found(svc: ClaimService, host: str) -> None:
    """The claim's start is quiet; the peak is at an allocation starting inside the interval."""
    svc.claim(lease(ClaimItem(host, "VCPU", 7), start=T0 + 5, end=T0 + 6), now_s=NOW)
    svc.claim(lease(ClaimItem(host, "VCPU", 4), start=T0 + 20, end=T0 + 30), now_s=NOW)
    svc.claim(lease(ClaimItem(host, "VCPU", 4), start=T0 + 25, end=T0 + 40), now_s=NOW)
    errors = conflict(svc, lease(ClaimItem(host, "VCPU", 2), start=T0, end=T0 + 10))
    assert "peak usage 7" in errors[0].detail
    errors = conflict(svc, lease(ClaimItem(host, "VCPU", 1), start=T0 + 10, end=T0 + 50))
    assert "peak usage 8" in errors[0].detail
    svc.claim(lease(ClaimItem(host, "VCPU", 1), start=T0, end=T0 + 10), now_s=NOW)
    svc.claim(lease(ClaimItem(host, "VCPU", 4), start=T0 + 6, end=T0 + 25), now_s=NOW)


def test_big_claim_many_items(db: Database, svc: ClaimService, site: tuple[str, str]) -> None:
    """More rows than one INSERT batch, many hosts in one lock statement."""
    hosts = [
        make_host(db, site[0], {"VCPU": Inventory(total=1200), "GPU_A30": Inventory(total=2)})
        for _ in range(5)
    ]
    items = [ClaimItem(hosts[0], "VCPU", 1) for _ in range(1200)]
    items += [ClaimItem(h, "GPU_A30", 2) for h in hosts]
    result = svc.claim(lease(*items), now_s=NOW)
    assert result.allocations == 1205
    errors = conflict(svc, lease(ClaimItem(hosts[4], "GPU_A30", 1), ClaimItem(hosts[0], "VCPU", 1)))
    assert [e.pointer for e in errors] == ["/items/0", "/items/1"]
    with UnitOfWork(db, readonly=True) as uow:
        assert uow.allocations.count() == 1205
    audit_clean(db)
    with pytest.raises(ValidationFailed):
        svc.claim(lease(*[ClaimItem(hosts[0], "VCPU", 1)] * 2001), now_s=NOW)


def test_bandwidth_on_a_link(db: Database, svc: ClaimService) -> None:
    _, a = make_site(db)
    _, b = make_site(db)
    link = make_link(db, a, b, 100)
    svc.claim(lease(ClaimItem(link, "BANDWIDTH_GBPS", 60)), now_s=NOW)
    svc.claim(lease(ClaimItem(link, "BANDWIDTH_GBPS", 40)), now_s=NOW)
    errors = conflict(svc, lease(ClaimItem(link, "BANDWIDTH_GBPS", 1)))
    assert "BANDWIDTH_GBPS" in errors[0].detail


# -- validation ----------------------------------------------------------------------------------------------


def test_unit_rules(db: Database, svc: ClaimService, site: tuple[str, str]) -> None:
    h = make_host(db, site[0], {"MEMORY_MB": Inventory(total=64, min_unit=2, max_unit=16, step_size=2)})
    errors = invalid(
        svc,
        lease(
            ClaimItem(h, "MEMORY_MB", 1),
            ClaimItem(h, "MEMORY_MB", 18),
            ClaimItem(h, "MEMORY_MB", 5),
            ClaimItem(h, "MEMORY_MB", 16),
        ),
    )
    assert [(e.pointer, e.detail.split(": ", 1)[1]) for e in errors] == [
        ("/items/0/amount", "amount 1 is below min_unit 2"),
        ("/items/1/amount", "amount 18 is above max_unit 16"),
        ("/items/2/amount", "amount 5 is not a multiple of step_size 2"),
    ]
    svc.claim(lease(ClaimItem(h, "MEMORY_MB", 16), ClaimItem(h, "MEMORY_MB", 2)), now_s=NOW)


def test_unknown_class_and_provider(svc: ClaimService, host: str) -> None:
    errors = invalid(svc, lease(ClaimItem(host, "VCPU", 1), ClaimItem(host, "GPU_H100", 1)))
    assert [e.pointer for e in errors] == ["/items/1/resource_class"]
    assert "GPU_H100" in errors[0].detail
    errors = invalid(svc, lease(ClaimItem("00000000-0000-0000-0000-000000000000", "VCPU", 1)))
    assert [e.pointer for e in errors] == ["/items/0/provider_uuid"]


def test_request_shape_problems(svc: ClaimService, host: str) -> None:
    errors = invalid(svc, lease(ClaimItem(host, "VCPU", 1), start=T0, end=T0))
    assert errors[0].pointer == "/consumer/end_s"
    errors = invalid(svc, lease(ClaimItem(host, "VCPU", 1), start=NOW - 20, end=NOW))
    assert errors[0].pointer == "/consumer/end_s"
    errors = invalid(svc, lease())
    assert errors[0].pointer == "/items"
    errors = invalid(svc, lease(ClaimItem(host, "VCPU", 0)))
    assert errors[0].pointer == "/items/0/amount"
    errors = invalid(svc, hold(ClaimItem(host, "VCPU", 1), expires=NOW))
    assert errors[0].pointer == "/consumer/expires_s"
    no_expiry = ClaimRequest(ConsumerSpec(ConsumerKind.HOLD, "p", T0, T0 + 1), (ClaimItem(host, "VCPU", 1),))
    assert invalid(svc, no_expiry)[0].pointer == "/consumer/expires_s"
    errors = invalid(svc, lease(ClaimItem(host, "VCPU", 1, vlan_tag=5)))
    assert errors[0].pointer == "/items/0/vlan_tag"


def test_duplicate_consumer_uuid(svc: ClaimService, host: str) -> None:
    uuid = "11111111-2222-3333-4444-555555555555"
    svc.claim(lease(ClaimItem(host, "VCPU", 1), uuid=uuid), now_s=NOW)
    with pytest.raises(AlreadyExists):
        svc.claim(lease(ClaimItem(host, "VCPU", 1), uuid=uuid), now_s=NOW)


# -- VLAN tags -----------------------------------------------------------------------------------


def test_vlan_tag_outside_the_port_range(
    db: Database, svc: ClaimService, site: tuple[str, str], host: str
) -> None:
    port = make_port(db, site[1], "100-199")
    errors = invalid(svc, lease(ClaimItem(port, "VLAN", 1, vlan_tag=200)))
    assert [e.pointer for e in errors] == ["/items/0/vlan_tag"]
    assert "100-199" in errors[0].detail
    errors = invalid(svc, lease(ClaimItem(port, "VLAN", 1)))  # no tag
    assert [e.pointer for e in errors] == ["/items/0/vlan_tag"]
    errors = invalid(svc, lease(ClaimItem(port, "VLAN", 2, vlan_tag=100)))
    assert [e.pointer for e in errors] == ["/items/0/amount"]
    errors = invalid(svc, lease(ClaimItem(host, "VLAN", 1, vlan_tag=100)))  # a host has no VLAN inventory
    assert errors[0].pointer == "/items/0/resource_class"


def test_same_vlan_tag_overlapping_is_refused_back_to_back_allowed(
    db: Database, svc: ClaimService, site: tuple[str, str]
) -> None:
    port = make_port(db, site[1], "100-199")
    svc.claim(lease(ClaimItem(port, "VLAN", 1, vlan_tag=150), start=T0, end=T0 + 10), now_s=NOW)
    errors = conflict(
        svc,
        lease(
            ClaimItem(port, "BANDWIDTH_GBPS", 10),
            ClaimItem(port, "VLAN", 1, vlan_tag=150),
            start=T0 + 9,
            end=T0 + 20,
        ),
    )
    assert [e.pointer for e in errors] == ["/items/1/vlan_tag"]
    assert "VLAN 150" in errors[0].detail
    svc.claim(lease(ClaimItem(port, "VLAN", 1, vlan_tag=150), start=T0 + 10, end=T0 + 20), now_s=NOW)
    svc.claim(lease(ClaimItem(port, "VLAN", 1, vlan_tag=150), start=T0 - 5, end=T0), now_s=NOW)
    svc.claim(lease(ClaimItem(port, "VLAN", 1, vlan_tag=151), start=T0, end=T0 + 20), now_s=NOW)
    errors = invalid(
        svc, lease(ClaimItem(port, "VLAN", 1, vlan_tag=160), ClaimItem(port, "VLAN", 1, vlan_tag=160))
    )
    assert [e.pointer for e in errors] == ["/items/0/vlan_tag", "/items/1/vlan_tag"]
    audit_clean(db)


def test_vlan_count_is_capacity_too(db: Database, svc: ClaimService, site: tuple[str, str]) -> None:
    port = make_port(db, site[1], "10-11")
    svc.claim(
        lease(ClaimItem(port, "VLAN", 1, vlan_tag=10), ClaimItem(port, "VLAN", 1, vlan_tag=11)), now_s=NOW
    )
    errors = conflict(svc, lease(ClaimItem(port, "VLAN", 1, vlan_tag=10)))
    assert {e.pointer for e in errors} == {"/items/0", "/items/0/vlan_tag"}


# -- holds and releases ----------------------------------------------------------------------


def test_expired_holds_do_not_count(
    db: Database, svc: ClaimService, site: tuple[str, str], host: str
) -> None:
    port = make_port(db, site[1], "100-101")
    held = svc.claim(
        hold(ClaimItem(host, "VCPU", 8), ClaimItem(port, "VLAN", 1, vlan_tag=100), expires=NOW + 5), now_s=NOW
    )
    assert held.status == "HELD"
    conflict(svc, lease(ClaimItem(host, "VCPU", 1)), now=NOW + 4)
    conflict(svc, lease(ClaimItem(port, "VLAN", 1, vlan_tag=100)), now=NOW + 4)
    # expires_s <= now: the hold is dead; its capacity and its tag are free again.
    svc.claim(lease(ClaimItem(host, "VCPU", 8), ClaimItem(port, "VLAN", 1, vlan_tag=100)), now_s=NOW + 5)
    audit_clean(db)  # the claim reaped the dead hold's rows, so the table itself is consistent
    with UnitOfWork(db, readonly=True) as uow:
        row = uow.session.scalars(select(ConsumerRow).where(ConsumerRow.uuid == held.consumer_uuid)).one()
        assert row.status == "EXPIRED"
        assert row.generation == 1
        assert row.allocations == []
    assert svc.release(held.consumer_uuid, now_s=NOW + 6).already_released


def test_sweeper_expires_holds(db: Database, svc: ClaimService, host: str) -> None:
    a = svc.claim(hold(ClaimItem(host, "VCPU", 2), expires=NOW + 5), now_s=NOW)
    svc.claim(hold(ClaimItem(host, "VCPU", 2), expires=NOW + 50), now_s=NOW)
    before = generation(db)
    assert svc.expire_holds(now_s=NOW + 4) == 0
    assert generation(db) == before
    assert svc.expire_holds(now_s=NOW + 5) == 1
    assert generation(db) == before + 1
    assert svc.expire_holds(now_s=NOW + 5) == 0
    with UnitOfWork(db, readonly=True) as uow:
        assert uow.allocations.count() == 1
    assert svc.release(a.consumer_uuid, now_s=NOW + 6).status == "EXPIRED"


def test_release_is_idempotent_and_frees_capacity(db: Database, svc: ClaimService, host: str) -> None:
    first = svc.claim(lease(ClaimItem(host, "VCPU", 8), ClaimItem(host, "GPU_A30", 2)), now_s=NOW)
    conflict(svc, lease(ClaimItem(host, "VCPU", 1)))
    before = generation(db)
    done = svc.release(first.consumer_uuid, now_s=NOW)
    assert (done.already_released, done.status, done.allocations_deleted) == (False, "RELEASED", 2)
    assert generation(db) == before + 1
    again = svc.release(first.consumer_uuid, status=ConsumerStatus.CANCELLED, now_s=NOW)
    assert (again.already_released, again.status, again.allocations_deleted) == (True, "RELEASED", 0)
    assert generation(db) == before + 1
    svc.claim(lease(ClaimItem(host, "VCPU", 8)), now_s=NOW)
    with pytest.raises(NotFound):
        svc.release("00000000-0000-0000-0000-000000000000")
    with pytest.raises(ValidationFailed):
        svc.release(first.consumer_uuid, status=ConsumerStatus.ACTIVE)
    audit_clean(db)


def test_ending_a_lease_early_keeps_its_past(db: Database, svc: ClaimService, host: str) -> None:
    running = svc.claim(lease(ClaimItem(host, "VCPU", 8), start=T0, end=T0 + 100), now_s=NOW)
    later = svc.claim(lease(ClaimItem(host, "GPU_A30", 1), start=T0 + 50, end=T0 + 60), now_s=NOW)
    done = svc.release(running.consumer_uuid, status=ConsumerStatus.ENDED, now_s=T0 + 30)
    assert (done.allocations_ended, done.allocations_deleted, done.status) == (1, 0, "ENDED")
    assert svc.release(running.consumer_uuid, status=ConsumerStatus.ENDED, now_s=T0 + 31).already_released
    # [T0, T0+30) stays booked; from T0+30 on the cores are free.
    conflict(svc, lease(ClaimItem(host, "VCPU", 1), start=T0 + 29, end=T0 + 40), now=T0 + 30)
    svc.claim(lease(ClaimItem(host, "VCPU", 8), start=T0 + 30, end=T0 + 40), now_s=T0 + 30)
    ended = svc.release(later.consumer_uuid, status=ConsumerStatus.ENDED, now_s=T0 + 30)
    assert (ended.allocations_ended, ended.allocations_deleted) == (0, 1)
    audit_clean(db)


def test_failed_claim_changes_nothing(db: Database, svc: ClaimService, host: str) -> None:
    svc.claim(lease(ClaimItem(host, "GPU_A30", 2)), now_s=NOW)
    before = generation(db)
    conflict(svc, lease(ClaimItem(host, "VCPU", 2), ClaimItem(host, "GPU_A30", 1)))
    with UnitOfWork(db, readonly=True) as uow:
        assert uow.allocations.count() == 1
        assert uow.session.scalar(select(ConsumerRow.id).where(ConsumerRow.status == "PENDING").limit(2)) == 1
    assert generation(db) == before


# -- property: the service agrees with a brute-force reference -------------------------------------------


@pytest.fixture(scope="module")
def property_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    path: Path = tmp_path_factory.mktemp("claims") / "property.db"
    database = Database(f"sqlite:///{path}")
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


# What an item can name: (provider key, class, tag). Capacities are drawn per example.
TARGETS = [
    ("h0", "VCPU", None),
    ("h0", "GPU_A30", None),
    ("h1", "VCPU", None),
    ("p", "VLAN", 10),
    ("p", "VLAN", 11),
]

claim_op = st.tuples(
    st.just("claim"),
    st.sampled_from(["lease", "hold"]),
    st.lists(st.tuples(st.integers(0, len(TARGETS) - 1), st.integers(1, 3)), min_size=1, max_size=3),
    st.integers(-4, 20),  # start offset from now
    st.integers(1, 12),  # length
    st.integers(1, 8),  # hold lifetime
    st.integers(0, 3),  # clock advance before the step
)
release_op = st.tuples(
    st.just("release"),
    st.sampled_from(["RELEASED", "ENDED"]),
    st.integers(0, 30),  # which earlier consumer
    st.integers(0, 3),
)


@dataclass
class Ref:
    kind: str
    items: list[tuple[str, str, int | None, int]]  # (provider key, class, tag, amount)
    start: int
    end: int
    expires: int | None
    released: bool = False
    uuid: str = ""
    cut: dict[str, int] = field(default_factory=dict)


def _live_amount(ref: Ref, now: int, t: int) -> bool:
    if ref.released and ref.cut.get("end") is None:
        return False
    if ref.kind == "hold" and ref.expires is not None and ref.expires <= now:
        return False
    end = ref.cut.get("end", ref.end)
    return ref.start <= t < end


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    caps=st.tuples(st.integers(2, 6), st.integers(1, 3), st.integers(2, 6)),
    ops=st.lists(st.one_of(claim_op, release_op), min_size=1, max_size=14),
)
def test_property_matches_brute_force(
    property_db: Database, caps: tuple[int, int, int], ops: list[tuple[object, ...]]
) -> None:
    db = property_db
    svc = ClaimService(db)
    site_uuid, site_name = make_site(db)
    h0 = make_host(db, site_uuid, {"VCPU": Inventory(total=caps[0]), "GPU_A30": Inventory(total=caps[1])})
    h1 = make_host(db, site_uuid, {"VCPU": Inventory(total=caps[2])})
    port = make_port(db, site_name, "10-11")
    uuids = {"h0": h0, "h1": h1, "p": port}
    capacity = {
        ("h0", "VCPU"): caps[0],
        ("h0", "GPU_A30"): caps[1],
        ("h1", "VCPU"): caps[2],
        ("p", "VLAN"): 2,
    }
    now = 1_000_000
    refs: list[Ref] = []

    for op in ops:
        if op[0] == "claim":
            _, kind, raw_items, offset, length, life, advance = op
            assert isinstance(kind, str)
            assert isinstance(raw_items, list)
            assert isinstance(offset, int)
            assert isinstance(length, int)
            assert isinstance(life, int)
            assert isinstance(advance, int)
            now += advance
            start, end = now + offset, now + offset + length
            if end <= now:
                end = now + 1
            items = [
                (TARGETS[i][0], TARGETS[i][1], TARGETS[i][2], 1 if TARGETS[i][1] == "VLAN" else a)
                for i, a in raw_items
            ]
            expires = now + life if kind == "hold" else None
            expected = _reference(refs, items, start, end, now, capacity)
            spec = ConsumerSpec(ConsumerKind(kind), "prop", start, end, expires_s=expires)
            request = ClaimRequest(
                spec, tuple(ClaimItem(uuids[p], rc, amt, tag) for p, rc, tag, amt in items)
            )
            try:
                result = svc.claim(request, now_s=now)
                outcome = "ok"
            except SlotbrokerError as exc:
                outcome = exc.code
            event(f"claim: {outcome}")
            assert outcome == expected, (items, start, end, now)
            if outcome == "ok":
                refs.append(Ref(kind, items, start, end, expires, uuid=result.consumer_uuid))
        else:
            _, status, which, advance = op
            assert isinstance(status, str)
            assert isinstance(which, int)
            assert isinstance(advance, int)
            now += advance
            if not refs:
                continue
            ref = refs[which % len(refs)]
            done = svc.release(ref.uuid, status=ConsumerStatus(status), now_s=now)
            event(f"release: {'again' if done.already_released else status}")
            if ref.released:
                assert done.already_released
            elif ref.kind == "lease":
                assert not done.already_released
            if not done.already_released:
                ref.released = True
                if status == "ENDED" and ref.kind == "lease" and ref.start < now:
                    ref.cut["end"] = min(ref.end, now)
        audit_clean(db)


def _reference(
    refs: list[Ref],
    items: list[tuple[str, str, int | None, int]],
    start: int,
    end: int,
    now: int,
    capacity: dict[tuple[str, str], int],
) -> str:
    tags = [(p, tag) for p, _, tag, _ in items if tag is not None]
    if len(tags) != len(set(tags)):
        return "validation_error"
    for p, rc, _, amount in items:
        if amount > capacity[(p, rc)]:  # max_unit defaults to total
            return "validation_error"
    wanted: dict[tuple[str, str], int] = {}
    for p, rc, _, amount in items:
        wanted[(p, rc)] = wanted.get((p, rc), 0) + amount
    for t in range(start, end):
        for pair, amount in wanted.items():
            used = sum(
                a for r in refs if _live_amount(r, now, t) for p, rc, _, a in r.items if (p, rc) == pair
            )
            if used + amount > capacity[pair]:
                return "capacity_conflict"
        for p, tag in tags:
            if any(_live_amount(r, now, t) and (p, tag) in {(q, g) for q, _, g, _ in r.items} for r in refs):
                return "capacity_conflict"
    return "ok"
