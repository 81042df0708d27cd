"""Leases (consumers of kind ``lease``) and their allocation rows; their scheduled events are
``lease_event_rows``' and the hosts that may stand in for a lease's host ``lease_hosts``' (the repository
inherits both)."""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    bindparam,
    delete,
    func,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from slotbroker.domain.claims import FREEING_STATUSES, ConsumerKind, ConsumerStatus
from slotbroker.domain.providers import ProviderKind
from slotbroker.store import calendar_changes
from slotbroker.store.prebuilt import fixed, pad, run_compiled, run_counted, run_rows
from slotbroker.store.repositories.lease_batch_reads import ROW_WITH_PROVIDER
from slotbroker.store.repositories.lease_event_rows import LeaseEventRows
from slotbroker.store.repositories.lease_hosts import HostRef as HostRef  # callers import it from here
from slotbroker.store.repositories.lease_hosts import StandInHosts
from slotbroker.store.repositories.usage import stop_rows
from slotbroker.store.tables import (
    allocations,
    consumers,
    facility_ports,
    links,
    providers,
)


class LeaseHead(NamedTuple):
    """What a writer that changes a lease's times or status reads of it, under its lock."""

    id: int
    project: str
    status: str
    start_s: int
    end_s: int
    generation: int


class LeaseRepository(LeaseEventRows, StandInHosts):
    """The lease's hot statements (every create, tick and end runs them) are built once, below, and run
    on the session's connection: building a statement and the ORM's execution path cost several times
    what SQLite spends on such a one-row statement. Those with int and str parameters and results run
    compiled once, on the cursor (``store/prebuilt.py``)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- the lease row -----------------------------------------------------------------------------------
    def find(self, lease_id: str, *, lock: bool = False) -> Any:
        """The consumer row of lease ``lease_id`` (every column), or None; ``lock``: ``FOR UPDATE``."""
        rows = run_rows(self._core(), _find_locked if lock else _find, 0, {"lease_id": lease_id})
        return rows[0] if rows else None

    def lock_head(self, lease_id: str) -> LeaseHead | None:
        """``find(lease_id, lock=True)``, only the columns a change of times or status needs."""
        rows = run_compiled(self._core(), _lock_head, 0, {"lease_id": lease_id})
        return LeaseHead(*rows[0]) if rows else None

    def lock_to_fire(self, consumer_id: int) -> Any:
        """(id, uuid, project) of lease ``consumer_id``, locked; None when another writer holds it
        (``SKIP LOCKED``) or it is gone."""
        rows = run_rows(self._core(), _lock_to_fire, 0, {"cid": consumer_id})
        return rows[0] if rows else None

    def page(
        self,
        *,
        project: str | None,
        status: Sequence[str] | None,
        start_s: int | None,
        end_s: int | None,
        before: int | None,
        limit: int,
        named: str | None = None,
        site: str | None = None,
    ) -> list[Any]:
        """Leases with id < ``before`` (None: any), newest first (at most ``limit``), overlapping
        [start_s, end_s); ``named``: whose name or id starts with it, in any case; ``site``: holding
        something of that site (by name): a host, a facility port, or a link with an end there."""
        stmt = select(consumers).where(consumers.c.kind == ConsumerKind.LEASE.value)
        if before is not None:
            stmt = stmt.where(consumers.c.id < before)
        stmt = _filtered(stmt, project, status)
        if start_s is not None:
            stmt = stmt.where(consumers.c.end_s > start_s)
        if end_s is not None:
            stmt = stmt.where(consumers.c.start_s < end_s)
        if named:
            # compared as text, never as a pattern: no character of ``named`` is a wildcard
            lowered, n = named.lower(), len(named)
            stmt = stmt.where(
                (func.lower(func.substr(consumers.c.name, 1, n)) == lowered)
                | (func.lower(func.substr(consumers.c.uuid, 1, n)) == lowered)
            )
        if site is not None:
            stmt = stmt.where(_on_site(site).exists())
        return list(self.session.execute(stmt.order_by(consumers.c.id.desc()).limit(limit)).all())

    def newest(self, *, project: str | None, status: Sequence[str] | None, limit: int) -> list[Any]:
        """The newest ``limit`` leases, oldest first."""
        stmt = _filtered(
            select(consumers).where(consumers.c.kind == ConsumerKind.LEASE.value), project, status
        )
        rows = self.session.execute(stmt.order_by(consumers.c.id.desc()).limit(limit)).all()
        return list(reversed(rows))

    def count(self, *, project: str | None, status: Sequence[str] | None) -> int:
        stmt = _filtered(
            select(func.count()).select_from(consumers).where(consumers.c.kind == ConsumerKind.LEASE.value),
            project,
            status,
        )
        return int(self.session.scalar(stmt) or 0)

    def set_times(self, consumer_id: int, generation: int, start_s: int, end_s: int) -> bool:
        """Compare-and-swap on ``generation``: the new interval, the next generation."""
        params = {"cid": consumer_id, "gen": generation, "new_start": start_s, "new_end": end_s}
        return run_counted(self._core(), _set_times, params) == 1

    def set_name(self, consumer_id: int, name: str) -> None:
        self.session.execute(update(consumers).where(consumers.c.id == consumer_id).values(name=name))

    def set_placement(self, consumer_id: int, placement: str) -> None:
        """The lease's component -> host names (JSON), from the window it was booked from."""
        self.session.execute(
            update(consumers).where(consumers.c.id == consumer_id).values(placement=placement)
        )

    def placement_of(self, consumer_id: int) -> str | None:
        found = self.session.scalar(select(consumers.c.placement).where(consumers.c.id == consumer_id))
        return None if found is None else str(found)

    def host_names(self, uuids: Collection[str]) -> dict[str, str]:
        """uuid -> name of these providers."""
        rows = self.session.execute(
            select(providers.c.uuid, providers.c.name).where(providers.c.uuid.in_(list(uuids)))
        )
        return {str(u): str(n) for u, n in rows}

    def set_status(
        self, consumer_id: int, status: ConsumerStatus, *, only_from: ConsumerStatus | None = None
    ) -> None:
        """Move to ``status`` (next generation); ``only_from``: only when the lease is in that status."""
        params = {"cid": consumer_id, "new_status": status.value}
        if only_from is not None:
            params["only_from"] = only_from.value
        # Only a freeing status changes what the calendar counts: a consumer in one has no rows left
        # (every path into one deletes them), so leaving one adds nothing back.
        tracked = [consumer_id] if status.value in FREEING_STATUSES else []
        with calendar_changes.tracking(self.session, tracked):
            run_counted(self._core(), _set_status if only_from is None else _set_status_from, params)

    def bump_generation(self, consumer_id: int) -> None:
        self.session.execute(
            update(consumers)
            .where(consumers.c.id == consumer_id)
            .values(generation=consumers.c.generation + 1)
        )

    # -- its allocation rows ------------------------------------------------------------------------------
    def items_to(self, consumer_id: int, end_s: int) -> list[tuple[str, str, int, int | None]]:
        """(provider uuid, class, amount, vlan tag) of the lease's rows that run to ``end_s``."""
        rows = self.session.execute(
            select(
                providers.c.uuid, allocations.c.resource_class, allocations.c.amount, allocations.c.vlan_tag
            )
            .select_from(allocations.join(providers, providers.c.id == allocations.c.provider_id))
            .where(allocations.c.consumer_id == consumer_id, allocations.c.end_s == end_s)
            .order_by(allocations.c.id)
        ).all()
        return [(str(u), str(rc), int(a), None if tag is None else int(tag)) for u, rc, a, tag in rows]

    def rows_from(self, consumer_id: int, now_s: int) -> list[Any]:
        """The lease's rows not over at ``now_s``, with their provider: (id, resource_class, amount,
        vlan_tag, pid, uuid, name, kind, parent_id)."""
        return list(
            self.session.execute(
                select(*ROW_WITH_PROVIDER)
                .select_from(allocations.join(providers, providers.c.id == allocations.c.provider_id))
                .where(allocations.c.consumer_id == consumer_id, allocations.c.end_s > now_s)
                .order_by(allocations.c.id)
            ).all()
        )

    def free_rows(self, consumer_id: int) -> None:
        """Delete every row of the lease (a move frees the old interval before claiming the new; the
        claim bumps the calendar)."""
        with calendar_changes.tracking(self.session, [consumer_id]):
            run_counted(self._core(), _delete_rows_of, {"cid": consumer_id})

    def shorten_rows(self, consumer_id: int, end_s: int) -> None:
        """Cut the lease's rows at ``end_s``; the caller bumps the calendar once for it."""
        with calendar_changes.tracking(self.session, [consumer_id], bumps=1):
            self.session.execute(
                update(allocations)
                .where(allocations.c.consumer_id == consumer_id, allocations.c.end_s > end_s)
                .values(end_s=end_s)
            )

    def adopt(self, consumer_id: int, temp_id: int, *, stretch: tuple[int, int] | None = None) -> None:
        """Give the rows a temporary consumer claimed to the lease, and drop the temporary consumer.
        ``stretch`` (start, end): the claim extended the lease, so its rows ending at ``start`` are
        stretched to ``end`` and the temporary rows dropped instead. The claim bumped the calendar."""
        with calendar_changes.tracking(self.session, [consumer_id, temp_id]):
            self._adopt(consumer_id, temp_id, stretch)

    def _adopt(self, consumer_id: int, temp_id: int, stretch: tuple[int, int] | None) -> None:
        conn = self._core()
        if stretch is not None:
            start, end = stretch
            run_counted(conn, _stretch_rows, {"cid": consumer_id, "old_end": start, "new_end": end})
            run_counted(conn, _delete_rows_of, {"cid": temp_id})
        else:
            run_counted(conn, _move_rows, {"cid": consumer_id, "from_cid": temp_id})
        run_counted(conn, _delete_consumer, {"cid": temp_id})

    def drop_rows(self, row_ids: Collection[int]) -> None:
        """Delete these rows (a rehost moves them; its claim bumps the calendar)."""
        with calendar_changes.tracking(self.session, calendar_changes.owners(self.session, row_ids)):
            self.session.execute(delete(allocations).where(allocations.c.id.in_(list(row_ids))))

    def end_rows_at(self, row_ids: Collection[int], now_s: int) -> None:
        """Stop rows at ``now_s`` (``stop_rows``: as a release to ``ENDED`` does; a rehost's claim bumps
        the calendar)."""
        drop, cut = stop_rows(allocations.c.id.in_(list(row_ids)), now_s)
        with calendar_changes.tracking(self.session, calendar_changes.owners(self.session, row_ids)):
            self.session.execute(drop)
            self.session.execute(cut)

    def allocations_of(self, consumer_ids: Collection[int]) -> list[Any]:
        """(consumer_id, uuid, name, resource_class, amount, vlan_tag, start_s, end_s) of the leases' rows."""
        ids = pad(sorted(set(consumer_ids)))
        params = {f"k{i}": cid for i, cid in enumerate(ids)}
        return run_rows(self._core(), _allocations_of, len(ids), params) if ids else []


def _on_site(site: str) -> Any:
    """The allocations of the outer query's consumer on a host or facility port of ``site`` or a link
    ending there (a correlated subquery for ``exists``)."""
    at = select(providers.c.id).where(providers.c.kind == ProviderKind.SITE.value, providers.c.name == site)
    there = union_all(
        select(providers.c.id).where(
            providers.c.kind == ProviderKind.HOST.value, providers.c.parent_id.in_(at)
        ),
        select(facility_ports.c.provider_id).where(facility_ports.c.site_id.in_(at)),
        select(links.c.provider_id).where(links.c.site_a_id.in_(at) | links.c.site_b_id.in_(at)),
    )
    return select(allocations.c.consumer_id).where(
        allocations.c.consumer_id == consumers.c.id, allocations.c.provider_id.in_(there)
    )


def _filtered(stmt: Any, project: str | None, status: Sequence[str] | None) -> Any:
    if project is not None:
        stmt = stmt.where(consumers.c.project == project)
    if status:
        stmt = stmt.where(consumers.c.status.in_(list(status)))
    return stmt


_LEASE = consumers.c.kind == ConsumerKind.LEASE.value
_FIND = select(consumers).where(consumers.c.uuid == bindparam("lease_id"), _LEASE)
_FIND_LOCKED = _FIND.with_for_update()
_LOCK_HEAD = (
    select(
        consumers.c.id,
        consumers.c.project,
        consumers.c.status,
        consumers.c.start_s,
        consumers.c.end_s,
        consumers.c.generation,
    )
    .where(consumers.c.uuid == bindparam("lease_id"), _LEASE)
    .with_for_update()
)
_LOCK_TO_FIRE = (
    select(consumers.c.id, consumers.c.uuid, consumers.c.project)
    .where(consumers.c.id == bindparam("cid"), _LEASE)
    .with_for_update(skip_locked=True)
)
_SET_TIMES = (
    update(consumers)
    .where(consumers.c.id == bindparam("cid"), consumers.c.generation == bindparam("gen"))
    .values(start_s=bindparam("new_start"), end_s=bindparam("new_end"), generation=consumers.c.generation + 1)
)
_SET_STATUS = (
    update(consumers)
    .where(consumers.c.id == bindparam("cid"))
    .values(status=bindparam("new_status"), generation=consumers.c.generation + 1)
)
_SET_STATUS_FROM = _SET_STATUS.where(consumers.c.status == bindparam("only_from"))


@functools.cache
def _allocations_of(n: int) -> Any:
    """The rows of the leases :k0 ... :k(n-1) with their provider, by row id (``allocations_of``)."""
    return (
        select(
            allocations.c.consumer_id,
            providers.c.uuid,
            providers.c.name,
            allocations.c.resource_class,
            allocations.c.amount,
            allocations.c.vlan_tag,
            allocations.c.start_s,
            allocations.c.end_s,
        )
        .select_from(allocations.join(providers, providers.c.id == allocations.c.provider_id))
        .where(
            allocations.c.consumer_id.in_([bindparam(f"k{i}", type_=consumers.c.id.type) for i in range(n)])
        )
        .order_by(allocations.c.id)
    )


_DELETE_ROWS_OF = delete(allocations).where(allocations.c.consumer_id == bindparam("cid"))
_STRETCH_ROWS = (
    update(allocations)
    .where(allocations.c.consumer_id == bindparam("cid"), allocations.c.end_s == bindparam("old_end"))
    .values(end_s=bindparam("new_end"))
)
_MOVE_ROWS = (
    update(allocations)
    .where(allocations.c.consumer_id == bindparam("from_cid"))
    .values(consumer_id=bindparam("cid"))
)
_DELETE_CONSUMER = delete(consumers).where(consumers.c.id == bindparam("cid"))


# The statements above that run compiled once (``store/prebuilt.py``), as its builders.
_find = fixed(_FIND)
_find_locked = fixed(_FIND_LOCKED)
_lock_to_fire = fixed(_LOCK_TO_FIRE)
_lock_head = fixed(_LOCK_HEAD)
_set_times = fixed(_SET_TIMES)
_delete_rows_of = fixed(_DELETE_ROWS_OF)
_stretch_rows = fixed(_STRETCH_ROWS)
_move_rows = fixed(_MOVE_ROWS)
_delete_consumer = fixed(_DELETE_CONSUMER)
_set_status = fixed(_SET_STATUS)
_set_status_from = fixed(_SET_STATUS_FROM)
