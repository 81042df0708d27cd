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


def host_free(index: CalendarIndex, plan: Plan, rows: I64, s: int, e: int) -> I64:
    """(len(rows) x len(plan.classes)) capacity minus peak usage over [s, e)."""
    if not plan.classes:
        return np.zeros((rows.shape[0], 0), dtype=np.int64)
    return np.stack([index.host_free(c, rows, s, e) for c in plan.classes], axis=1)


def instances_fit(free: I64, comp: CompPlan) -> I64:
    """How many instances of ``comp`` each host (row of ``free``) could hold by itself."""
    need = comp.demand
    mask = need > 0
    if not mask.any():
        return np.full(free.shape[0], comp.count, dtype=np.int64)
    per = np.maximum(free[:, mask], 0) // need[mask]
    return np.asarray(per.min(axis=1), dtype=np.int64)
