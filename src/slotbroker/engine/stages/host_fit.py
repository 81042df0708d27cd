"""Stage 4 (tier 2): each candidate host's free capacity over the *whole* window, for every class the
request needs, in one vectorised peak query per class; and how many instances of a component each
host could take on its own (a site that cannot reach ``count`` that way is dropped)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.plan import CompPlan, Plan

I64 = npt.NDArray[np.int64]
READS = frozenset({"host.usage", "host.capacity"})


def host_free_cols(index: CalendarIndex, plan: Plan, rows: I64, s: int, e: int) -> list[I64]:
    """Per class of ``plan.classes``: capacity minus peak usage over [s, e) of each host row."""
    return [index.host_free(c, rows, s, e) for c in plan.classes]


def host_free(index: CalendarIndex, plan: Plan, rows: I64, s: int, e: int) -> I64:
    """(len(rows) x len(plan.classes)) capacity minus peak usage over [s, e)."""
    if not plan.classes:
        return np.zeros((rows.shape[0], 0), dtype=np.int64)
    return np.stack(host_free_cols(index, plan, rows, s, e), axis=1)


def usable_cols(cols: list[I64]) -> list[I64]:
    """``cols`` with overbooked amounts (negative free) counted as 0: what ``instances_fit_cols``
    reads, computed once per class and shared by every component."""
    return [np.maximum(col, 0) for col in cols]


def instances_fit_cols(cols: list[I64], n: int, comp: CompPlan) -> I64:
    """How many instances of ``comp`` each of ``n`` hosts could hold by itself, from its free capacity
    given one array per class (``cols[k]``: the hosts' free amount of ``plan.classes[k]``, after
    ``usable_cols``). One contiguous array per class: a (hosts x classes) matrix would be read with a
    stride."""
    out: I64 | None = None
    for col, need in zip(cols, comp.demand.tolist(), strict=True):
        if need <= 0:
            continue
        per = col // need
        out = per if out is None else np.minimum(out, per)
    if out is None:
        return np.full(n, comp.count, dtype=np.int64)
    return np.asarray(out, dtype=np.int64)
