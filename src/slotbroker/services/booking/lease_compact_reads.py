"""The leases of one compaction pass, read together and kept while they stay the calendar's (decision 0052).

A compaction searches the calendar without a lease, so it must remove exactly the rows the index holds
for it: the lease and the index must be at one calendar generation. ``LeaseCompactor.read`` reads one
lease with the generation in one read transaction; a pass reads all of its leases that way at once
(``read_pass``: one transaction, one statement for the leases, one for their rows, the generation).

A read taken at generation G is still the lease as the calendar counts it at a later generation G' when
every commit between them is one of this pass's own moves and none of them touched that lease: every
writer that changes capacity bumps the generation (decision 0006), a move's commit records the bumps it
ran and the consumers whose rows it changed (``CalendarChanges``, decision 0030), and bumps only add. So
G' = G + the bumps of our own commits since G leaves no room for anybody else's. ``moved`` drops the
reads of the consumers a move touched and adds its bumps; ``valid`` compares. When the generation moved
by more (another writer, or a commit of ours that failed to report), the kept reads are taken again in
one batch (``refresh``); after ``MAX_REFRESHES`` of those in a pass (a busy calendar), the rest of the
pass reads each lease alone, as the single-lease path does.

The calendar each examination searches is the cache's as of a generation read begun after the latest of
these reads (``taken_at``, the ``arrived`` of ``CalendarCache.current``), the contract of every find-slot
answer: an examination that follows one that did not move reuses that read instead of reading the
generation again; after a move of the pass the cache has its report and reads the generation anew to
replay it. A read begun after a lease read sees at least that read's generation, so ``valid`` compares
like with like; another writer's commit since is seen at the next fresh read, the move's proof in SQL
guarding in between.

What a read must be exact about is what the calendar counts (rows, status); the rest (name, the lease's
generation) is what the plain read gives too, re-proven where it matters by the move's compare-and-swap
on the lease's generation under its lock, with the capacity proven in SQL in that transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from slotbroker.services.booking.lease_shape import LeaseRead
from slotbroker.store.calendar_changes import CalendarChanges
from slotbroker.store.db import Database
from slotbroker.store.repositories.lease_batch_reads import lease_heads, rows_of
from slotbroker.store.unit_of_work import UnitOfWork

MAX_REFRESHES = 2  # batch re-reads in a pass after another writer's commit; then one lease at a time

ReadOne = Callable[[str], LeaseRead | None]


def read_pass(db: Database, lease_ids: Sequence[str], project: str | None) -> dict[str, LeaseRead | None]:
    """Each of ``lease_ids`` as ``LeaseCompactor.read`` would read it (None: no such lease in
    ``project``), all at one calendar generation, in one read transaction."""
    with UnitOfWork(db, readonly=True) as uow:
        heads = lease_heads(uow.session, lease_ids)
        mine = {u: h for u, h in heads.items() if project is None or h.project == project}
        rows = rows_of(uow.session, [int(h.id) for h in mine.values()])
        generation = uow.calendar.generation()
    out: dict[str, LeaseRead | None] = {}
    for lease_id in lease_ids:
        head = mine.get(lease_id)
        out[lease_id] = (
            None if head is None else LeaseRead.of(lease_id, head, tuple(rows[int(head.id)]), generation)
        )
    return out


class PassReads:
    """``get`` a lease's read, ``valid`` at a calendar generation, ``moved`` after a move's commit,
    ``drop`` a read found stale, ``refresh`` when the calendar moved by more than this pass's commits.
    With ``batch`` False (a single compaction) every ``get`` is a plain read."""

    def __init__(
        self, db: Database, project: str | None, read_one: ReadOne, lease_ids: Sequence[str], batch: bool
    ) -> None:
        self.db = db
        self.project = project
        self.read_one = read_one
        self._kept: dict[str, LeaseRead | None] = read_pass(db, lease_ids, project) if batch else {}
        self.taken_at = time.monotonic()  # when the latest read (batch or one lease) was done
        self._own = 0  # bumps of this pass's own commits since the kept reads were taken
        self.refreshes = 0

    def get(self, lease_id: str) -> LeaseRead | None:
        if lease_id in self._kept:
            return self._kept[lease_id]
        read = self.read_one(lease_id)
        self.taken_at = time.monotonic()
        return read

    def kept(self, lease: LeaseRead) -> bool:
        """Whether ``lease`` is one of the pass's reads (else a plain read, exact at its own generation)."""
        return self._kept.get(lease.id) is lease

    def valid(self, lease: LeaseRead, generation: int) -> bool:
        """Whether ``lease`` is what the calendar counts at ``generation`` (see the module)."""
        if self.kept(lease):
            return generation == lease.calendar_generation + self._own
        return generation == lease.calendar_generation

    def moved(self, changes: CalendarChanges | None) -> None:
        """A move of this pass committed ``changes`` (None: not known): the reads of the consumers it
        touched are dropped; unknown or undescribed, every read is (the next ``get`` reads afresh)."""
        if changes is None or not changes.complete:
            self._kept.clear()
            return
        touched = {h.consumer_id for h in (*changes.removed, *changes.added)}
        for lease_id, read in list(self._kept.items()):
            if read is not None and read.consumer_id in touched:
                del self._kept[lease_id]
        self._own += changes.bumps

    def drop(self, lease_id: str) -> None:
        self._kept.pop(lease_id, None)

    def refresh(self) -> None:
        """Take the kept reads again at one generation (another writer committed since they were
        taken); past ``MAX_REFRESHES`` in this pass, drop them instead."""
        if not self._kept:
            return
        if self.refreshes >= MAX_REFRESHES:
            self._kept.clear()
            return
        self.refreshes += 1
        self._kept = read_pass(self.db, list(self._kept), self.project)
        self.taken_at = time.monotonic()
        self._own = 0
