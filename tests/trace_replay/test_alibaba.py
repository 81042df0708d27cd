"""The Alibaba GPU pod replay on hand-made nodes and pods, and on the real trace when present."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from slotbroker.replay.alibaba import (
    Placement,
    audit_nodes,
    read_nodes,
    read_pods,
    replay_pods,
    summarise_pods,
)

from .support import trace_file

NODES = "sn,cpu_milli,memory_mib,gpu,model\nn-0,8000,1024,2,T4\nn-1,8000,1024,0,\n"
PODS = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"
    "p-0,1000,100,1,500,,LS,Running,0,100,0\n"  # half a card
    "p-1,1000,100,1,500,,LS,Running,0,100,0\n"  # the other half of the same card (fullest first)
    "p-2,1000,100,2,1000,,LS,Running,10,50,10\n"  # two whole cards: only one is whole -> not placed
    "p-3,1000,100,0,0,,LS,Running,20,30,20\n"  # CPU only
    "p-4,1000,100,1,1000,,LS,Running,60,100,60\n"  # a whole card: the second one is whole
    "p-5,1000,100,1,300,,LS,Running,70,70,70\n"  # no lifetime: dropped
)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    nodes, pods = tmp_path / "nodes.csv", tmp_path / "pods.csv"
    nodes.write_text(NODES)
    pods.write_text(PODS)
    return nodes, pods


def test_pods_share_cards_and_multi_gpu_pods_need_whole_cards(files: tuple[Path, Path]) -> None:
    nodes, pods = read_nodes(files[0]), read_pods(files[1])
    assert [p.name for p in pods] == ["p-0", "p-1", "p-2", "p-3", "p-4"]
    run = replay_pods(nodes, pods, "first_fit")
    where = {p.pod.name: (p.node, p.cards) for p in run.placements}
    assert where == {"p-0": (0, (0,)), "p-1": (0, (0,)), "p-3": (0, ()), "p-4": (0, (1,))}
    s = summarise_pods(run)
    # 4 GPU pods, 3 placed; card-seconds 0.5*100 + 0.5*100 + 1*40 = 140 of 2 cards x 100 s
    assert s["gpu_pods"] == 4
    assert s["gpu_pods_placed_fraction"] == 0.75
    assert s["gpu_utilization"] == pytest.approx(140 / 200)
    assert s["violations"] == 0


def test_the_node_audit_catches_an_overfull_card(files: tuple[Path, Path]) -> None:
    nodes, pods = read_nodes(files[0]), read_pods(files[1])
    run = replay_pods(nodes, pods, "best_fit")
    assert audit_nodes(run) == 0
    p4 = next(p for p in run.placements if p.pod.name == "p-4")
    forced = tuple(Placement(p.pod, p.node, (0,)) if p is p4 else p for p in run.placements)
    assert audit_nodes(replace(run, placements=forced)) == 1  # card 0 holds 500 + 500 + 1000


def test_the_real_trace_places_pods_without_violations() -> None:
    nodes = read_nodes(trace_file("alibaba_openb_node_list_all_node.csv"))
    pods = read_pods(trace_file("alibaba_openb_pod_list_default.csv.gz"))
    assert len(nodes) == 1523
    assert len(pods) == 8151
    s = summarise_pods(replay_pods(nodes, pods, "first_fit", keep_all=True))
    assert s["violations"] == 0
    assert 0.5 < s["gpu_pods_placed_fraction"] < 1
