"""Allocation requests: a find-slot window (or an allocation candidate) claimable by an opaque id.

The Nova lesson (docs/decisions/0011-allocation-requests.md): the scheduler should hand out an *id*, not
nested dicts of allocations and alternates. Each window's concrete items are sealed into its id when the
search answers (``allocation_request_ids``: the id carries its content, signed, so a search writes
nothing); ``POST /v1/claims {allocation_request: id}`` then claims exactly those items, and when a
chosen host was taken meanwhile it swaps that instance onto the component's alternates, one host at a
time, before answering ``capacity_conflict``.

What a body holds (``ARBody``):

* ``instances``: per component instance, the host (uuid and name) and the amounts of every class,
  elastic classes at their granted amount;
* ``items``: everything else, fixed whatever host is chosen: ``BANDWIDTH_GBPS`` on every link of every
  route, each facility port's VLAN tags (one item per tag) and bandwidth, and the port route's links;
* ``alternates``: component -> hosts (uuid, name) that also fit the window, in the engine's order.

An id claims at most once: the consumer uuid of an id claim is derived from the id (uuid5), so the
consumers table's unique uuid makes a second claim (a client retrying after a timeout, two replicas
racing) fail atomically, and it answers ``allocation_request_claimed`` naming the consumer.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from collections.abc import Callable, Sequence

from slotbroker.domain.claims import ClaimItem, ClaimRequest, ClaimResult, ConsumerKind, ConsumerSpec
from slotbroker.domain.errors import AlreadyExists, CapacityConflict, FieldError, item_index
from slotbroker.domain.request import SlotRequest
from slotbroker.domain.time import to_datetime, to_epoch
from slotbroker.engine.topology import Topology
from slotbroker.services.booking.allocation_request_bodies import (
    AllocationRequestClaimed,
    AllocationRequestExpired,
    AllocationRequestNotFound,
    ARBody,
    ClaimOutcome,
    Instance,
    Item,
    ProviderUuids,
    Swap,
)
from slotbroker.services.booking.allocation_request_ids import IdSealer
from slotbroker.services.booking.alternates import conflicting_owner, next_alternate
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.window_items import WindowItem, grant_of, instance_amounts, shared_items
from slotbroker.services.find_slot.calendar_cache import CachedIndex
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.find_slot import FindSlotResult, WindowView

# Consumer uuids of id claims: uuid5(namespace, allocation request id) -- one claim per id.
CLAIM_NAMESPACE = uuidlib.UUID("6f1d3c58-2b7e-4f0a-9d1e-5a4c2b8e7f10")


# -- service ----------------------------------------------------------------------------------------------
class AllocationRequestService:
    def __init__(
        self,
        db: Database,
        claims: ClaimService,
        uuids: ProviderUuids,
        *,
        sealer: IdSealer,
        ttl_s: int = 600,
        hold_ttl_s: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.claims = claims
        self.uuids = uuids
        self.sealer = sealer
        self.ttl_s = ttl_s
        self.hold_ttl_s = hold_ttl_s
        self.clock = clock

    # -- creation ---------------------------------------------------------------------------------------
    def attach(
        self, result: FindSlotResult, req: SlotRequest, cached: CachedIndex, project: str = ""
    ) -> FindSlotResult:
        """The find-slot hook: store every window's items and alternates (one INSERT) and return the
        result with each window's ``allocation_request`` id."""
        if not result.windows:
            return result
        topo = cached.index.topo
        bodies = [self.window_body(topo, req, w, cached.generation) for w in result.windows]
        ids = self.create(bodies, project=project)
        windows = [
            w.model_copy(update={"allocation_request": i}) for w, i in zip(result.windows, ids, strict=True)
        ]
        return result.model_copy(update={"windows": windows})

    def window_body(self, topo: Topology, req: SlotRequest, w: WindowView, generation: int) -> ARBody:
        """The concrete items of one find-slot window (``window_items``), names resolved to uuids."""
        hosts, links, ports = topo.hosts, topo.links, topo.ports
        ids: set[int] = set()
        for names in (*w.placement.values(), *w.alternates.values()):
            ids.update(hosts[topo.host_row[n]].id for n in names)
        for r in w.routes:
            ids.update(links[topo.link_row[n]].id for n in r.links)
        for p in w.ports:
            ids.add(ports[topo.port_row[(p.site, p.port)]].id)
            ids.update(links[topo.link_row[n]].id for n in p.links)
        uuid_of = self.uuids.of(ids)

        def host_uuid(name: str) -> str:
            return uuid_of[hosts[topo.host_row[name]].id]

        def provider_uuid(it: WindowItem) -> str:
            if it.port is not None:
                return uuid_of[ports[topo.port_row[it.port]].id]
            return uuid_of[links[topo.link_row[it.provider]].id]

        instances: list[Instance] = []
        for comp in req.components:
            for i, host in enumerate(w.placement.get(comp.name, [])):
                amounts = instance_amounts(comp, grant_of(w, comp.name, i))
                instances.append(Instance(comp.name, i, host_uuid(host), host, amounts, comp.minimum()))
        items = [
            Item(provider_uuid(it), it.provider, it.resource_class, it.amount, it.vlan_tag)
            for it in shared_items(req, w)
        ]
        alternates = {c: [(host_uuid(h), h) for h in hs] for c, hs in w.alternates.items() if hs}
        return ARBody(
            start_s=to_epoch(w.start),
            end_s=to_epoch(w.end),
            instances=tuple(instances),
            items=tuple(items),
            alternates=alternates,
            generation=generation,
        )

    def create(self, bodies: Sequence[ARBody], *, project: str = "", now_s: int | None = None) -> list[str]:
        """The ids of ``bodies``, in order: each id is its body, sealed (``allocation_request_ids``), so
        nothing is written.

        ``project`` "" means the id is a bearer capability any project may claim (for callers that do
        not know the project); otherwise only that project sees it.
        """
        now = int(self.clock()) if now_s is None else now_s
        return [self.sealer.seal(project, now + self.ttl_s, b) for b in bodies]

    # -- lookup -----------------------------------------------------------------------------------------
    def load(self, ar_id: str, *, project: str | None, now_s: int | None = None) -> ARBody:
        """The body of ``ar_id``; ``project`` None means any (admins)."""
        now = int(self.clock()) if now_s is None else now_s
        sealed = self.sealer.open(ar_id)
        if sealed is None or (project is not None and sealed.project not in ("", project)):
            raise AllocationRequestNotFound(
                "no such allocation request", [FieldError("/allocation_request", "unknown id")]
            )
        if sealed.expires_s <= now:
            raise AllocationRequestExpired(
                "the allocation request expired; search again",
                [
                    FieldError(
                        "/allocation_request", f"expired at {to_datetime(sealed.expires_s).isoformat()}"
                    )
                ],
            )
        return sealed.body

    # -- claims -----------------------------------------------------------------------------------------
    def spec(
        self,
        *,
        kind: ConsumerKind,
        project: str,
        start_s: int,
        end_s: int,
        now_s: int,
        name: str = "",
        expires_s: int | None = None,
        uuid: str | None = None,
    ) -> ConsumerSpec:
        if kind == ConsumerKind.HOLD and expires_s is None:
            expires_s = now_s + self.hold_ttl_s
        return ConsumerSpec(
            kind=kind,
            project=project,
            start_s=start_s,
            end_s=end_s,
            expires_s=expires_s,
            name=name,
            uuid=uuid,
        )

    def claim(
        self,
        ar_id: str,
        *,
        project: str,
        kind: ConsumerKind,
        name: str = "",
        expires_s: int | None = None,
        visible_to: str | None = "",
        now_s: int | None = None,
    ) -> ClaimOutcome:
        """Claim the window ``ar_id`` describes for ``project``; on a conflict on a host, swap that
        instance to its component's next alternate and try again (one host at a time).

        ``visible_to``: the project whose ids may be used ("" means ``project``; None means any).
        """
        now = int(self.clock()) if now_s is None else now_s
        body = self.load(ar_id, project=project if visible_to == "" else visible_to, now_s=now)
        consumer_uuid = str(uuidlib.uuid5(CLAIM_NAMESPACE, ar_id))
        spec = self.spec(
            kind=kind,
            project=project,
            start_s=body.start_s,
            end_s=max(body.end_s, body.start_s + 1),
            now_s=now,
            name=name,
            expires_s=expires_s,
            uuid=consumer_uuid,
        )
        hosts = [(inst.host_uuid, inst.host_name) for inst in body.instances]
        tried: set[str] = set()  # hosts that conflicted or were tried: never swap onto them again
        swaps: list[Swap] = []
        while True:
            items, owner = _items(body, hosts)
            request = ClaimRequest(
                spec, tuple(ClaimItem(i.provider_uuid, i.resource_class, i.amount, i.vlan_tag) for i in items)
            )
            try:
                result = self.claims.claim(request, now_s=now)
            except AlreadyExists:
                raise _claimed(consumer_uuid) from None
            except CapacityConflict as exc:
                if not swaps and self.consumer_project(consumer_uuid) is not None:
                    raise _claimed(consumer_uuid) from None
                # the swap rule (alternates.py): the first conflicting host, for its next stand-in
                i = conflicting_owner(exc.errors, owner)
                if i is None:
                    raise _readdress(exc, items) from None
                inst = body.instances[i]
                tried.add(hosts[i][0])
                stand_ins = dict(body.alternates.get(inst.component, []))
                new = next_alternate(stand_ins, tried, {h for h, _ in hosts})
                if new is None:
                    raise _readdress(exc, items) from None
                swaps.append(Swap(inst.component, inst.index, hosts[i][1], stand_ins[new]))
                hosts[i] = (new, stand_ins[new])
                continue
            return ClaimOutcome(result, project, tuple(items), ar_id, tuple(swaps))

    def claim_items(self, request: ClaimRequest, *, now_s: int | None = None) -> ClaimOutcome:
        """An explicit claim: exactly ``request``'s items, no alternates."""
        now = int(self.clock()) if now_s is None else now_s
        return _explicit(request, self.claims.claim(request, now_s=now))

    async def claim_items_async(self, request: ClaimRequest, *, now_s: int | None = None) -> ClaimOutcome:
        """``claim_items`` for callers on an event loop (``ClaimService.claim_async``)."""
        now = int(self.clock()) if now_s is None else now_s
        return _explicit(request, await self.claims.claim_async(request, now_s=now))

    def consumer_project(self, consumer_uuid: str) -> str | None:
        with UnitOfWork(self.db, readonly=True) as uow:
            return uow.allocation_requests.consumer_project(consumer_uuid)


def _claimed(consumer_uuid: str) -> AllocationRequestClaimed:
    return AllocationRequestClaimed(
        f"the allocation request was already claimed by consumer {consumer_uuid}",
        [FieldError("/allocation_request", f"claimed by {consumer_uuid}")],
    )


def _items(body: ARBody, hosts: Sequence[tuple[str, str]]) -> tuple[list[Item], list[int | None]]:
    """The claim items for the current host of each instance; ``owner[k]`` is the instance index of
    item k, or None for a link or port item."""
    items: list[Item] = []
    owner: list[int | None] = []
    for i, (inst, (hu, hn)) in enumerate(zip(body.instances, hosts, strict=True)):
        for rc, amount in sorted(inst.amounts(hu).items()):
            items.append(Item(hu, hn, rc, int(amount)))
            owner.append(i)
    items.extend(body.items)
    owner.extend([None] * len(body.items))
    return items, owner


def _readdress(exc: CapacityConflict, items: Sequence[Item]) -> CapacityConflict:
    """Point an id claim's conflicts at what the client can see: the provider and class."""
    errors = []
    for err in exc.errors:
        k = item_index(err.pointer)
        where = "/allocation_request"
        if k is not None and k < len(items):
            it = items[k]
            where += f"/{it.provider_name or it.provider_uuid}/{it.resource_class}"
        errors.append(FieldError(where, err.detail))
    return CapacityConflict(f"{exc.detail}; no alternate host fits either", errors)


def _explicit(request: ClaimRequest, result: ClaimResult) -> ClaimOutcome:
    items = tuple(Item(i.provider_uuid, "", i.resource_class, i.amount, i.vlan_tag) for i in request.items)
    return ClaimOutcome(result, request.consumer.project, items)


__all__ = ["CLAIM_NAMESPACE", "AllocationRequestService"]
