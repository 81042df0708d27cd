"""The Alibaba GPU cluster trace (gpu-v2023 ``openb``): pods placed on its 1,523 nodes.

Why a path of its own: a pod needs CPU, memory and GPUs *on one node*, and most pods take a fraction of
one GPU (``gpu_milli`` thousandths; several pods share a card), so the pool-of-identical-hosts profile
of the SWF policies does not describe it. Pods carry no requested time, and Kubernetes places a pod when
it is created or leaves it pending, so this replay places each pod at its ``creation_time`` on a node
that has room for it until its ``deletion_time`` (the trace's lifetime is the booking's duration, the only
duration the trace gives), or counts it as not placed. Nodes come from ``importers.parse_alibaba_nodes``
(whole cores, MiB, ``GPU_<MODEL>`` cards); a pod asking for ``num_gpu`` > 1 takes whole cards.

``keep_all`` replays the same pods without deletions (every pod at once, in creation order): the
cluster's packing limit, the scenario where placement quality shows.

Node orders (the ``policy``): ``first_fit`` (node order), ``best_fit`` (least free GPU, then CPU, left
after placing: packs, keeping whole cards free for multi-GPU pods) and ``spread`` (most free first).
The audit (``audit_nodes``) re-checks every node's CPU, memory and each card's thousandths from the
placements alone.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import io
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from slotbroker.importers import parse_alibaba_nodes

POLICIES = ("first_fit", "best_fit", "spread")
MILLI = 1000


@dataclass(frozen=True, slots=True)
class Pod:
    name: str
    cpu_milli: int
    memory_mib: int
    num_gpu: int
    gpu_milli: int  # per card
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    cpu_milli: int
    memory_mib: int
    gpus: int


@dataclass(frozen=True)
class Placement:
    pod: Pod
    node: int  # index into the nodes
    cards: tuple[int, ...]  # card indexes on the node, one per GPU (empty for CPU pods)


@dataclass(frozen=True)
class AlibabaRun:
    policy: str
    nodes: tuple[Node, ...]
    pods: tuple[Pod, ...]
    placements: tuple[Placement, ...]
    wall_s: float
    keep_all: bool = False


def _text(path: Path) -> str:
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return fh.read()
    return path.read_text(encoding="utf-8")


def read_nodes(path: Path) -> tuple[Node, ...]:
    topo = parse_alibaba_nodes(_text(path))
    out = []
    for host in topo.providers[0].children[0].children:
        inv = host.inventories
        gpus = sum(v.total for k, v in inv.items() if k.startswith("GPU_"))
        out.append(Node(host.name, inv["VCPU"].total * MILLI, inv["MEMORY_MB"].total, gpus))
    return tuple(out)


def read_pods(path: Path) -> tuple[Pod, ...]:
    """Pods with a positive lifetime, by creation time (ties: name). ``ValueError`` names a bad line."""
    pods = []
    reader = csv.DictReader(io.StringIO(_text(path)))
    for row in reader:
        try:
            pod = Pod(
                row["name"],
                int(row["cpu_milli"]),
                int(row["memory_mib"]),
                int(row["num_gpu"]),
                int(row["gpu_milli"]) if int(row["num_gpu"]) == 1 else MILLI,
                int(row["creation_time"]),
                int(row["deletion_time"]),
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"line {reader.line_num}: {exc}") from None
        if pod.end > pod.start:
            pods.append(pod)
    pods.sort(key=lambda p: (p.start, p.name))
    return tuple(pods)


def _cards_for(pod: Pod, cards: npt.NDArray[np.int64]) -> tuple[int, ...]:
    """Which of the node's cards (free thousandths each, -1 for no card) take ``pod``: the fullest
    that fit (the caller checked that enough do)."""
    if pod.num_gpu == 0:
        return ()
    fit = [(int(free), i) for i, free in enumerate(cards.tolist()) if free >= pod.gpu_milli]
    return tuple(i for _, i in sorted(fit)[: pod.num_gpu])


def replay_pods(
    nodes: tuple[Node, ...], pods: tuple[Pod, ...], policy: str, *, keep_all: bool = False
) -> AlibabaRun:
    """Place each pod at its creation on a node ordered by ``policy``; ``keep_all``: pods never leave
    (every pod of the trace at once, the cluster's packing limit)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")
    t0 = time.perf_counter()
    cpu = np.array([n.cpu_milli for n in nodes], dtype=np.int64)
    mem = np.array([n.memory_mib for n in nodes], dtype=np.int64)
    width = max((n.gpus for n in nodes), default=0)
    cards = np.full((len(nodes), max(width, 1)), -1, dtype=np.int64)
    for i, n in enumerate(nodes):
        cards[i, : n.gpus] = MILLI
    ends: list[tuple[int, int, int]] = []  # (end, seq, placement index)
    placed: list[Placement] = []
    for pod in pods:
        while ends and ends[0][0] <= pod.start:
            _, _, k = heapq.heappop(ends)
            p = placed[k]
            cpu[p.node] += p.pod.cpu_milli
            mem[p.node] += p.pod.memory_mib
            for c in p.cards:
                cards[p.node, c] += p.pod.gpu_milli
        ok = (cpu >= pod.cpu_milli) & (mem >= pod.memory_mib)
        if pod.num_gpu:
            ok &= (cards >= pod.gpu_milli).sum(axis=1) >= pod.num_gpu
        fits = np.flatnonzero(ok)
        if fits.size == 0:
            continue
        if policy == "first_fit":
            i = int(fits[0])
        else:
            gpu_left = np.maximum(cards[fits], 0).sum(axis=1) - pod.gpu_milli * pod.num_gpu
            cpu_left = cpu[fits] - pod.cpu_milli
            sign = 1 if policy == "best_fit" else -1
            i = int(fits[np.lexsort((fits, sign * cpu_left, sign * gpu_left))[0]])
        chosen = _cards_for(pod, cards[i])
        cpu[i] -= pod.cpu_milli
        mem[i] -= pod.memory_mib
        for c in chosen:
            cards[i, c] -= pod.gpu_milli
        placed.append(Placement(pod, i, chosen))
        if not keep_all:
            heapq.heappush(ends, (pod.end, len(placed), len(placed) - 1))
    return AlibabaRun(policy, nodes, pods, tuple(placed), time.perf_counter() - t0, keep_all)


def audit_nodes(run: AlibabaRun) -> int:
    """Spans where a node's CPU, memory or one card's thousandths are over capacity (0 when sound)."""
    deltas: dict[tuple[int, str, int], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for p in run.placements:
        uses = [("cpu", 0, p.pod.cpu_milli), ("mem", 0, p.pod.memory_mib)]
        uses += [("card", c, p.pod.gpu_milli) for c in p.cards]
        for kind, c, amount in uses:
            d = deltas[(p.node, kind, c)]
            d[p.pod.start] += amount
            if not run.keep_all:
                d[p.pod.end] -= amount
    bad = 0
    for (node, kind, card), d in deltas.items():
        n = run.nodes[node]
        cap = n.cpu_milli if kind == "cpu" else n.memory_mib if kind == "mem" else MILLI
        if kind == "card" and card >= n.gpus:
            bad += 1
            continue
        level, over = 0, False
        for t in sorted(d):
            level += d[t]
            if level > cap and not over:
                bad += 1
            over = level > cap
    return bad


def summarise_pods(run: AlibabaRun) -> dict[str, float | int]:
    gpu_pods = [p for p in run.pods if p.num_gpu]
    gpu_placed = [p.pod for p in run.placements if p.pod.num_gpu]
    first = min(p.start for p in run.pods)
    last = max(p.end for p in run.pods)
    cards = sum(n.gpus for n in run.nodes)
    used = sum(p.num_gpu * p.gpu_milli / MILLI * (p.end - p.start) for p in gpu_placed)
    if run.keep_all:  # every pod at once: the share of the cards' thousandths allocated at the end
        used = sum(p.num_gpu * p.gpu_milli / MILLI for p in gpu_placed) * (last - first)
    return {
        "pods": len(run.pods),
        "gpu_pods": len(gpu_pods),
        "pods_placed_fraction": round(len(run.placements) / max(len(run.pods), 1), 4),
        "gpu_pods_placed_fraction": round(len(gpu_placed) / max(len(gpu_pods), 1), 4),
        "gpu_utilization": round(used / max(cards * (last - first), 1), 4),
        "violations": audit_nodes(run),
        "wall_s": round(run.wall_s, 2),
    }
