"""The net change a batch of described commits makes to the allocation rows an index counts.

A replay (``calendar_cache.py``) gathers the rows its commits removed and added; a row both remove and
add (a status change, the past of a lease that ended early) cancels, and a row removed and added back
ending earlier is one early end, of which only the tail goes. The engine then rewrites each touched
table row once.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from operator import attrgetter

from slotbroker.engine.snapshot import AllocationSnap

Key = tuple[int, str, int, int, int, int | None]
# a row's fields as a plain tuple: what ``AllocationSnap``'s equality compares, in its order
_key: attrgetter[Key] = attrgetter("provider_id", "resource_class", "amount", "start_s", "end_s", "vlan_tag")


def net_rows(
    added: Sequence[AllocationSnap], removed: Sequence[AllocationSnap]
) -> tuple[list[AllocationSnap], list[AllocationSnap]]:
    """``(Counter(added) - Counter(removed)).elements()`` and the reverse, as lists: multisets of rows,
    in the same order. The rows are counted by their field tuples rather than by themselves: a frozen
    dataclass hashes and compares in Python code, several times per row in the Counter arithmetic,
    where a tuple of ints and strings does it in C. Equal rows are equal values, so which of them
    stands for its key does not matter."""
    ka, kr = list(map(_key, added)), list(map(_key, removed))
    rows = dict(zip(kr, removed, strict=True))
    rows.update(zip(ka, added, strict=True))
    ca, cr = Counter(ka), Counter(kr)
    return [rows[k] for k in (ca - cr).elements()], [rows[k] for k in (cr - ca).elements()]


def cut_to_tails(
    added: list[AllocationSnap], removed: list[AllocationSnap]
) -> tuple[list[AllocationSnap], list[AllocationSnap]]:
    """A row removed and the same row added back ending earlier (a lease ended early, its end moved
    sooner) is one early end: only its tail [new end, old end) goes, as ``CalendarIndex.shorten``
    releases it. Every such pair becomes that tail among the removals, so the batch touches each row
    once instead of twice (the step functions are equal: -[s, e) + [s, n) = -[n, e)). Concrete VLAN
    tags are kept as intervals, not counts: their pairs stay as they are."""
    shorter: dict[tuple[int, str, int, int], list[int]] = {}  # key -> positions in added, unpaired
    for i, a in enumerate(added):
        if a.vlan_tag is None:
            shorter.setdefault((a.provider_id, a.resource_class, a.amount, a.start_s), []).append(i)
    if not shorter:
        return added, removed
    paired: set[int] = set()
    minus: list[AllocationSnap] = []
    for r in removed:
        key = (r.provider_id, r.resource_class, r.amount, r.start_s)
        free = shorter.get(key, []) if r.vlan_tag is None else []
        cut = next((i for i in free if added[i].end_s < r.end_s), None)
        if cut is None:
            minus.append(r)
            continue
        free.remove(cut)
        paired.add(cut)
        minus.append(dataclasses.replace(r, start_s=added[cut].end_s))
    return [a for i, a in enumerate(added) if i not in paired], minus
