"""Domain rules, without a database: VLAN sets, inventories, names, traits, topology documents."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from slotbroker.domain.errors import pointer
from slotbroker.domain.inventory import Inventory, capacity_of
from slotbroker.domain.network import FacilityPortSpec, LinkSpec, facility_port_provider_name
from slotbroker.domain.providers import ProviderKind, parent_problem
from slotbroker.domain.resource_classes import ClassKind, device_description, kind_of, naming_problem
from slotbroker.domain.topology import Registry, Topology, topology_problems, validate_topology
from slotbroker.domain.traits import trait_problem
from slotbroker.domain.vlans import VlanSet

# -- VLAN sets ------------------------------------------------------------------------------------------


def test_vlanset_parse_merge_and_print() -> None:
    v = VlanSet.parse(" 300-310, 100-200 ,201,150-160,4094 ")
    assert v.ranges == ((100, 201), (300, 310), (4094, 4094))
    assert str(v) == "100-201,300-310,4094"
    assert len(v) == 102 + 11 + 1
    assert 100 in v
    assert 201 in v
    assert 202 not in v
    assert 4094 in v
    assert "100" not in v
    assert list(VlanSet.parse("5,3-4")) == [3, 4, 5]
    assert VlanSet.parse("1-4094") == VlanSet.parse("1-2000,2001-4094")
    assert str(VlanSet.parse("7")) == "7"
    assert str(VlanSet.parse("1-3,5-6")) == "1-3,5-6"  # 4 is missing: not merged


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("200-100", "ends before it starts"),
        ("0-5", "outside 1-4094"),
        ("5000", "outside 1-4094"),
        ("4094-4095", "outside 1-4094"),
        ("abc", "is not a VLAN tag"),
        ("1-2-3", "is not a VLAN tag"),
        ("100,,200", "is not a VLAN tag"),
        ("-5", "is not a VLAN tag"),
        ("", "non-empty"),
        ("  ", "non-empty"),
    ],
)
def test_vlanset_rejects(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        VlanSet.parse(text)


@given(st.lists(st.tuples(st.integers(1, 4094), st.integers(0, 50)), min_size=1, max_size=8))
def test_vlanset_is_the_union(spans: list[tuple[int, int]]) -> None:
    pairs = [(lo, min(lo + n, 4094)) for lo, n in spans]
    tags = {t for lo, hi in pairs for t in range(lo, hi + 1)}
    v = VlanSet.parse(",".join(f"{lo}-{hi}" for lo, hi in pairs))
    assert set(v) == tags
    assert len(v) == len(tags)
    assert VlanSet.parse(str(v)) == v  # canonical
    assert all(b[0] > a[1] + 1 for a, b in zip(v.ranges, v.ranges[1:], strict=False))


# -- inventories ----------------------------------------------------------------------------------------


def test_inventory_defaults_and_capacity() -> None:
    inv = Inventory(total=128)
    assert (inv.reserved, inv.min_unit, inv.max_unit, inv.step_size, inv.allocation_ratio) == (
        0,
        1,
        128,
        1,
        1.0,
    )
    assert inv.capacity == 128
    assert Inventory(total=128, reserved=8, allocation_ratio=4.0).capacity == 480
    assert Inventory(total=10, allocation_ratio=0.3).capacity == 3
    assert Inventory(total=30, allocation_ratio=0.1).capacity == 3  # not 2 from 2.9999999999999996
    assert Inventory(total=3, allocation_ratio=1.5).capacity == 4  # 4.5 floored
    assert capacity_of(100, 100, 16.0) == 0
    assert capacity_of(2**53, 0, 1.0) == 2**53


def test_inventory_amount_problem() -> None:
    inv = Inventory(total=64, min_unit=2, max_unit=32, step_size=2)
    assert inv.amount_problem(2) is None
    assert inv.amount_problem(32) is None
    assert inv.amount_problem(1) == "amount 1 is below min_unit 2"
    assert inv.amount_problem(34) == "amount 34 is above max_unit 32"
    assert inv.amount_problem(7) == "amount 7 is not a multiple of step_size 2"
    assert Inventory(total=4).amount_problem(5) == "amount 5 is above max_unit 4"


@pytest.mark.parametrize(
    ("fields", "loc", "message"),
    [
        ({"total": 4, "reserved": 5}, ("reserved",), "reserved (5) exceeds total (4)"),
        ({"total": 8, "min_unit": 4, "max_unit": 2}, ("min_unit",), "min_unit (4) exceeds max_unit (2)"),
        ({"total": 2, "min_unit": 3}, ("min_unit",), "min_unit (3) exceeds max_unit (2)"),
        ({"total": 8, "step_size": 9}, ("step_size",), "step_size (9) exceeds max_unit (8)"),
        ({"total": 0}, ("total",), "greater than or equal to 1"),
        ({"total": -1}, ("total",), "greater than or equal to 1"),
        ({"total": 2**53 + 1}, ("total",), "less than or equal to"),
        ({"total": 4, "allocation_ratio": 0}, ("allocation_ratio",), "greater than 0"),
        ({"total": 4, "spare": 1}, ("spare",), "Extra inputs"),
    ],
)
def test_inventory_rejects(fields: dict[str, int], loc: tuple[str, ...], message: str) -> None:
    from slotbroker.domain.inventory import rule_field

    with pytest.raises(ValidationError) as info:
        Inventory(**fields)
    err = info.value.errors()[0]
    assert (*err["loc"], *rule_field(err)) == loc
    assert message in err["msg"]


# -- names ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("VCPU", ClassKind.STANDARD),
        ("VLAN", ClassKind.STANDARD),
        ("GPU_A100", ClassKind.DEVICE),
        ("GPU_RTX6000", ClassKind.DEVICE),
        ("FPGA_U280", ClassKind.DEVICE),
        ("NIC_CONNECTX6", ClassKind.DEVICE),
        ("CUSTOM_SMARTNIC", ClassKind.CUSTOM),
        ("CUSTOM_X_1", ClassKind.CUSTOM),
        ("GPU", None),
        ("GPU_", None),
        ("TPU_V4", None),
        ("CUSTOM_", None),
        ("gpu_a100", None),
        ("VCPUS", None),
        ("", None),
    ],
)
def test_resource_class_naming_rule(name: str, kind: ClassKind | None) -> None:
    assert kind_of(name) == kind
    assert (naming_problem(name) is None) == (kind is not None)


def test_naming_problem_messages() -> None:
    assert "upper-case letters" in (naming_problem("gpu_a100") or "")
    assert "unknown resource class 'TPU_V4'" in (naming_problem("TPU_V4") or "")
    assert device_description("GPU_A100") == "GPU model A100"
    assert device_description("NIC_CONNECTX6") == "Network card model CONNECTX6"


def test_trait_problem() -> None:
    custom = frozenset({"CUSTOM_RDMA"})
    assert trait_problem("HW_GPU_CUDA", custom) is None
    assert trait_problem("CUSTOM_RDMA", custom) is None
    assert trait_problem("CUSTOM_OTHER", custom) == "custom trait 'CUSTOM_OTHER' is not registered"
    assert "unknown trait 'HW_WARP'" in (trait_problem("HW_WARP", custom) or "")
    assert "not a trait name" in (trait_problem("hw_gpu_cuda", custom) or "")


def test_parent_rules() -> None:
    assert parent_problem(ProviderKind.REGION, None) is None
    assert parent_problem(ProviderKind.SITE, None) is None
    assert parent_problem(ProviderKind.SITE, ProviderKind.REGION) is None
    assert parent_problem(ProviderKind.HOST, ProviderKind.SITE) is None
    assert parent_problem(ProviderKind.DEVICE, ProviderKind.HOST) is None
    assert parent_problem(ProviderKind.FACILITY_PORT, ProviderKind.SITE) is None
    assert parent_problem(ProviderKind.HOST, None) == "a host cannot have no parent; allowed parents: site"
    assert parent_problem(ProviderKind.HOST, ProviderKind.REGION) == (
        "a host cannot have a region; allowed parents: site"
    )
    assert parent_problem(ProviderKind.REGION, ProviderKind.SITE) is not None
    assert parent_problem(ProviderKind.DEVICE, ProviderKind.SITE) is not None
    assert parent_problem(ProviderKind.LINK, ProviderKind.SITE) is not None


def test_pointer_escaping() -> None:
    assert pointer() == ""
    assert pointer("providers", 0, "name") == "/providers/0/name"
    assert pointer("a/b", "c~d") == "/a~1b/c~0d"


def test_network_specs() -> None:
    with pytest.raises(ValidationError) as info:
        LinkSpec(name="L", endpoints=("A", "A"), bandwidth_gbps=1)
    assert info.value.errors()[0]["loc"] == ("endpoints",)
    port = FacilityPortSpec(name="p", site="S", vlans="20-30,10-19", bandwidth_gbps=1)
    assert port.vlans == "10-30"
    with pytest.raises(ValidationError) as info:
        FacilityPortSpec(name="p", site="S", vlans="30-20", bandwidth_gbps=1)
    assert info.value.errors()[0]["loc"] == ("vlans",)
    assert facility_port_provider_name("STAR", "Cloud") == "STAR/Cloud"


# -- topology documents ---------------------------------------------------------------------------------


def test_topology_problems_name_every_pointer() -> None:
    doc = Topology.model_validate(
        {
            "resource_classes": [{"name": "CUSTOM_DECLARED"}],
            "traits": ["CUSTOM_T", "HW_NOT_CUSTOM"],
            "providers": [
                {
                    "name": "R",
                    "kind": "region",
                    "children": [
                        {
                            "name": "S",
                            "kind": "site",
                            "children": [
                                {
                                    "name": "h1",
                                    "kind": "host",
                                    "traits": ["CUSTOM_T", "CUSTOM_REGISTERED", "CUSTOM_NO"],
                                    "inventories": {
                                        "VCPU": 4,
                                        "CUSTOM_DECLARED": 1,
                                        "CUSTOM_KNOWN": 1,
                                        "CUSTOM_NEW": 1,
                                        "WARP": 1,
                                        "a/b": 1,
                                    },
                                    "children": [{"name": "d", "kind": "device"}],
                                },
                                {"name": "h1", "kind": "host"},
                            ],
                        },
                        {"name": "stray", "kind": "host"},
                        {"name": "L0", "kind": "link"},
                    ],
                },
                {"name": "S2", "kind": "site"},
                {"name": "d2", "kind": "device"},
            ],
            "links": [
                {"name": "L1", "endpoints": ["S", "S2"], "bandwidth_gbps": 10},
                {"name": "L2", "endpoints": ["S", "NOWHERE"], "bandwidth_gbps": 10},
                {"name": "L1", "endpoints": ["h1", "S"], "bandwidth_gbps": 10},
                {"name": "S2", "endpoints": ["S", "S2"], "bandwidth_gbps": 10},
            ],
            "facility_ports": [
                {"name": "p", "site": "S", "vlans": "1-10", "bandwidth_gbps": 1},
                {"name": "p", "site": "S", "vlans": "1-10", "bandwidth_gbps": 1},
                {"name": "q", "site": "R", "vlans": "1-10", "bandwidth_gbps": 1},
            ],
        }
    )
    registry = Registry(
        custom_classes=frozenset({"CUSTOM_KNOWN"}), custom_traits=frozenset({"CUSTOM_REGISTERED"})
    )
    problems = topology_problems(doc, registry)
    pointers = [p.pointer for p in problems]
    h1 = "/providers/0/children/0/children/0"
    assert sorted(pointers) == sorted(
        [
            "/traits/1",
            f"{h1}/traits/2",
            f"{h1}/inventories/CUSTOM_NEW",
            f"{h1}/inventories/WARP",
            f"{h1}/inventories/a~1b",
            "/providers/0/children/0/children/1/name",
            "/providers/0/children/1/kind",
            "/providers/0/children/2/kind",  # a link in the tree
            "/providers/0/children/2/kind",  # ... and not under a region
            "/providers/2/kind",
            "/links/1/endpoints/1",
            "/links/2/name",
            "/links/2/endpoints/0",
            "/links/3/name",
            "/facility_ports/1/name",
            "/facility_ports/2/site",
        ]
    )
    assert all(p.detail for p in problems)
    with pytest.raises(Exception, match="16 problem") as info:
        validate_topology(doc, registry)
    assert len(info.value.errors) == 16  # type: ignore[attr-defined]


def test_clean_topology_has_no_problems() -> None:
    from slotbroker.demo.fabric import fabric_like_topology

    assert topology_problems(fabric_like_topology(), Registry()) == []
    assert topology_problems(Topology(), Registry()) == []
