"""Re-placing a PENDING lease by a find-slot request, as if the lease were gone: one move or none.

A client that holds a reservation and wants the best window *now* (EASY's queue head at every pass)
would cancel it and book the request again: two transactions, two calendar changes, and the capacity
is free for anyone between them. ``rebook`` asks find-slot the same request on the calendar without
the lease (``FindSlotService.find_without``: ``CachedIndex.without``, the engine's own removal on a
copy), so the answer is the one the cancel-then-book would get, and then:

* the window is what the lease holds (same start, end, and amount of each class on each host): the
  lease is kept as it is, nothing is written;
* it starts elsewhen: the lease moves onto it in one transaction (``LeaseService.move_in``: quotas, the
  claim's capacity proof, the generation compare-and-swap, the events), without host swaps (the hosts
  are the window's);
* otherwise nothing changes and the outcome says why (``reason``): the lease is not PENDING (a started
  lease cannot move, and is not searched for), or only its hosts differ at the same times (a move
  changes times); a client that wants the window then cancels and books.

Only host leases and host requests: links, facility ports and VLAN tags are not compared
(``not_compactable``, as for compaction).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from slotbroker.domain.errors import CapacityConflict, ConcurrentUpdate, NotFound
from slotbroker.services.booking.alternates import repoint_placement
from slotbroker.services.booking.lease_compact import PENDING, LeaseCompactor
from slotbroker.services.booking.lease_shape import LeaseRead, holding, merged, pair
from slotbroker.services.booking.window_items import window_items
from slotbroker.services.find_slot.calendar_cache import CachedIndex
from slotbroker.services.retry import retrying
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.find_slot import WindowView
from slotbroker.wire.leases import UpdateLease

KEPT, MOVED = "kept", "moved"
# why nothing changed though the window differs (``Rebooked.reason``)
NO_WINDOW = "no_window"
NOT_PENDING = "not_pending"
SAME_TIMES = "same_times_other_hosts"  # a move changes times; hosts alone only by cancel and book
NOT_COMPACTABLE = "not_compactable"


@dataclass(frozen=True)
class Rebooked:
    """``outcome``: ``kept`` (the window is the lease), ``moved`` (the lease is now the window) or
    None (unchanged although the window differs; ``reason`` says why). ``window`` is find-slot's answer
    on the calendar without the lease (None: no window)."""

    outcome: str | None
    window: WindowView | None
    reason: str | None = None


class LeaseRebooker:
    def __init__(self, compactor: LeaseCompactor) -> None:
        self.compactor = compactor
        self.leases = compactor.leases
        self.find_slot = compactor.find_slot
        self.kept = 0
        self.moved = 0

    def rebook(self, lease_id: str, doc: dict[str, Any], *, project: str | None, now_s: int) -> Rebooked:
        """Find-slot's answer to ``doc`` as if lease ``lease_id`` were gone, and the lease kept, moved
        onto it or left (see the module). Raises ``NotFound`` (no such lease in ``project``) and what
        find-slot raises for a bad request."""
        for _ in range(self.compactor.max_attempts):
            lease = self.compactor.read(lease_id, project)
            if lease is None:
                raise NotFound(f"no lease {lease_id}")
            if lease.status != PENDING:  # started (or over): a move cannot place it, nor ``holding`` read it
                return Rebooked(None, None, NOT_PENDING)
            if not lease.hosts_only:
                return Rebooked(None, None, NOT_COMPACTABLE)
            cached = self.find_slot.calendar.current(now_s)
            if cached.generation != lease.calendar_generation:
                continue  # the calendar moved between the two reads: read both again
            req, result = self.find_slot.find_without(doc, holding(lease), cached, now_s=now_s)
            if not result.windows:
                return Rebooked(None, None, NO_WINDOW)
            window = result.windows[0]
            items = window_items(req, window)
            if any(it.owner is None for it in items):  # links or ports
                return Rebooked(None, window, NOT_COMPACTABLE)
            start, end = int(window.start.timestamp()), int(window.end.timestamp())
            wanted: Counter[tuple[str, str]] = Counter()
            for it in items:
                wanted[(it.provider, it.resource_class)] += it.amount
            if (start, end) == (lease.start, lease.end) and wanted == _held(lease):
                self.kept += 1
                return Rebooked(KEPT, window)
            if (start, end) == (lease.start, lease.end):
                return Rebooked(None, window, SAME_TIMES)
            try:
                self._move(lease, cached, window, wanted, now_s)
            except CapacityConflict:
                continue  # another writer took the room after the calendar was read: ask again
            except ConcurrentUpdate as exc:
                if exc.code != "concurrent_update":
                    raise
                continue  # the lease changed since it was read: read it again
            self.moved += 1
            return Rebooked(MOVED, window)
        raise ConcurrentUpdate(f"lease {lease_id}: the calendar kept changing; try again")

    def _move(
        self,
        lease: LeaseRead,
        cached: CachedIndex,
        window: WindowView,
        wanted: Counter[tuple[str, str]],
        now: int,
    ) -> None:
        """The lease onto ``window``'s hosts and times (``move_in``), its placement repointed first."""
        topo = cached.index.topo
        olds = sorted({int(r.pid) for r in lease.rows})
        pid = {name: topo.hosts[topo.host_row[name]].id for name, _ in wanted}
        news = sorted(set(pid.values()))

        def attempt(_n: int) -> None:
            with UnitOfWork(self.leases.db) as uow:
                uuid = {p: str(r.uuid) for p, r in uow.providers.by_id(sorted({*olds, *news})).items()}
                moves = {uuid[a]: uuid[b] for a, b in pair(olds, news).items()}
                repoint_placement(uow, lease.consumer_id, moves)
                items = merged((uuid[pid[host]], rc, n) for (host, rc), n in sorted(wanted.items()))
                change = UpdateLease(
                    generation=lease.generation,
                    start=window.start,
                    end=window.end,
                    allow_host_swap=False,
                )
                self.leases.move_in(uow, lease.id, change, items, now)
                uow.commit()

        retrying(attempt, self.compactor.max_attempts)


def _held(lease: LeaseRead) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for r in lease.rows:
        out[(str(r.name), str(r.resource_class))] += int(r.amount)
    return out


__all__ = ["KEPT", "MOVED", "LeaseRebooker", "Rebooked"]
