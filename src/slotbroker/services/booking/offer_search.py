"""Searching for offers: each strategy's windows become plans (a window as the concrete items a hold
claims, ``window_items``), and ``OfferMaker`` takes the strategies in turn, holding one plan each
until ``max_offers`` are held. A plan whose claim conflicts first tries its window's alternate hosts,
then the strategy searches again against the refreshed calendar (docs/decisions/0009-offers.md).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from slotbroker.domain.claims import ClaimItem
from slotbroker.domain.errors import CapacityConflict, FieldError, Forbidden, ValidationFailed
from slotbroker.domain.request import SlotRequest
from slotbroker.domain.time import to_epoch
from slotbroker.services.booking.alternates import conflicting_owner, next_alternate
from slotbroker.services.booking.window_items import Owner, grant_of, instance_amounts, window_items
from slotbroker.services.find_slot.service import FindSlotService
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.find_slot import ExplanationView, FindSlotResult, WindowView
from slotbroker.wire.offers import Strategy

log = logging.getLogger("slotbroker.offers")

MAX_RESEARCHES = 3  # fresh searches per strategy and offer set after claims conflicted

Hold = Callable[["Plan", int], str]
"""``(plan, position) -> offer id``: hold the plan as the set's offer ``position``, or raise what the
claim raises (``CapacityConflict``, ``ValidationFailed``, ``Forbidden``)."""


# -- plans: a window as concrete claim items ---------------------------------------------------------------


@dataclass
class Plan:
    """One window of one strategy, as the concrete items a hold claims."""

    strategy: Strategy
    window: WindowView
    request: SlotRequest
    placement: dict[str, list[str]]
    resources: dict[str, list[dict[str, int]]]
    items: list[ClaimItem] = field(default_factory=list)
    owners: list[Owner | None] = field(default_factory=list)
    swapped: set[tuple[str, int]] = field(default_factory=set)  # instances moved to an alternate

    @property
    def start_s(self) -> int:
        return to_epoch(self.window.start)

    @property
    def end_s(self) -> int:
        return to_epoch(self.window.end)

    def key(self) -> tuple[Any, ...]:
        """Two plans with equal keys would hold exactly the same thing: offer only one of them."""
        return (
            self.start_s,
            self.end_s,
            tuple(sorted((i.provider_uuid, i.resource_class, i.amount, i.vlan_tag or 0) for i in self.items)),
        )

    def document(self) -> dict[str, Any]:
        w = self.window
        return {
            "start_s": self.start_s,
            "end_s": self.end_s,
            "placement": self.placement,
            "sites": w.sites,
            "resources": self.resources,
            "routes": [r.model_dump() for r in w.routes],
            "ports": [p.model_dump() for p in w.ports],
            "score": w.score,
        }


class Names:
    """Provider names (hosts, links) and facility ports (site, port) -> provider uuids, looked up lazily."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.providers: dict[str, str] = {}
        self.ports: dict[tuple[str, str], str] = {}

    def load(self, names: Iterable[str], ports: Iterable[tuple[str, str]]) -> None:
        want = sorted(set(names) - set(self.providers))
        want_ports = sorted(set(ports) - set(self.ports))
        if not want and not want_ports:
            return
        with UnitOfWork(self.db, readonly=True) as uow:
            if want:
                self.providers.update(uow.offers.provider_uuids(want))
            if want_ports:
                self.ports.update(uow.offers.port_uuids({p[0] for p in want_ports}))

    def provider(self, name: str) -> str:
        try:
            return self.providers[name]
        except KeyError:
            raise ValidationFailed(f"provider {name!r} vanished", [FieldError("/request", name)]) from None

    def port(self, site: str, port: str) -> str:
        try:
            return self.ports[(site, port)]
        except KeyError:
            raise ValidationFailed(
                f"facility port {site}/{port} vanished", [FieldError("/request", port)]
            ) from None


def build_items(plan: Plan, names: Names) -> None:
    """Fill ``plan.items`` (and owners, resources) from the window (``window_items``), host and port
    names resolved to provider uuids."""
    req, w = plan.request, plan.window
    names.load(
        [h for hosts in plan.placement.values() for h in hosts]
        + [lk for r in w.routes for lk in r.links]
        + [lk for p in w.ports for lk in p.links],
        [(p.site, p.port) for p in w.ports],
    )
    items: list[ClaimItem] = []
    owners: list[Owner | None] = []
    for it in window_items(req, w, plan.placement, plan.swapped):
        uuid = names.provider(it.provider) if it.port is None else names.port(*it.port)
        items.append(ClaimItem(uuid, it.resource_class, it.amount, it.vlan_tag))
        owners.append(it.owner)
    resources = {
        comp.name: [
            instance_amounts(comp, None if (comp.name, k) in plan.swapped else grant_of(w, comp.name, k))
            for k in range(len(plan.placement.get(comp.name, [])))
        ]
        for comp in req.components
    }
    plan.items, plan.owners, plan.resources = items, owners, resources


def swap_to_alternate(plan: Plan, errors: Sequence[FieldError], tried: set[str]) -> bool:
    """Move the first conflicting instance to the next stand-in of its component (the swap rule in
    ``alternates.py``); False when the conflict cannot be swapped away."""
    owner = conflicting_owner(errors, plan.owners)
    if owner is None:
        return False
    hosts = list(plan.placement[owner.component])
    tried.add(hosts[owner.instance])
    alt = next_alternate(plan.window.alternates.get(owner.component, []), tried, hosts)
    if alt is None:
        return False
    hosts[owner.instance] = alt
    plan.placement = {**plan.placement, owner.component: hosts}
    plan.swapped.add((owner.component, owner.instance))
    return True


# -- strategies --------------------------------------------------------------------------------------------


def elastic_document(doc: dict[str, Any]) -> dict[str, Any]:
    """The request with every fixed amount made elastic from the amount to twice it."""
    comps = []
    for comp in doc.get("components", []):
        resources = dict(comp.get("resources") or {})
        if not resources:
            comps.append(comp)
            continue
        elastic = dict(comp.get("elastic") or {})
        for rc, amount in resources.items():
            elastic[rc] = {"min": amount, "max": 2 * amount}
        comps.append({**comp, "resources": {}, "elastic": elastic})
    return {**doc, "components": comps}


def fixed_longest_document(doc: dict[str, Any], req: SlotRequest) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k not in ("min_duration", "max_duration", "duration")}
    out["duration"] = req.max_duration_s
    return out


def grant_size(plan: Plan) -> float:
    """How much more than the minimum a plan's elastic grants give (sum of granted / min)."""
    total = 0.0
    for comp in plan.request.components:
        for granted in plan.window.grants.get(comp.name, []):
            total += sum(
                amount / comp.elastic[rc].min for rc, amount in granted.items() if rc in comp.elastic
            )
    return total


# -- making offers -----------------------------------------------------------------------------------------


class OfferMaker:
    """Takes the strategies in turn, one offer each, until ``max_offers`` are held or none has more."""

    def __init__(
        self,
        db: Database,
        find_slot: FindSlotService,
        hold: Hold,
        set_id: str,
        doc: dict[str, Any],
        req: SlotRequest,
        max_offers: int,
        now: int,
    ) -> None:
        self.find_slot = find_slot
        self.hold = hold
        self.set_id = set_id
        self.doc = doc
        self.req = req
        self.max_offers = max_offers
        self.now = now
        self.names = Names(db)
        self.queues: dict[Strategy, deque[Plan]] = {}
        self.researches: dict[Strategy, int] = {}
        self.seen: set[tuple[Any, ...]] = set()
        self.made: list[str] = []
        self.explanation: ExplanationView | None = None
        self.refused: Forbidden | None = None  # the first quota refusal, reported if nothing was offered

    def run(self, strategies: list[Strategy]) -> list[str]:
        for strategy in strategies:
            self.queues[strategy] = deque(self.search(strategy))
            self.researches[strategy] = 0
        active = list(strategies)
        while active and len(self.made) < self.max_offers:
            for strategy in list(active):
                if len(self.made) >= self.max_offers:
                    break
                if not self.next_offer(strategy):
                    active.remove(strategy)
        return self.made

    def next_offer(self, strategy: Strategy) -> bool:
        queue = self.queues[strategy]
        while True:
            if not queue:
                return False
            plan = queue.popleft()
            try:
                build_items(plan, self.names)
            except ValidationFailed:
                continue
            if plan.key() in self.seen:
                continue
            self.seen.add(plan.key())
            if self.try_hold(plan):
                return True
            # The calendar this strategy searched is stale (an offer of this set, another set, or a
            # racing replica took the capacity): search again, now counting every open hold.
            if self.researches[strategy] < MAX_RESEARCHES:
                self.researches[strategy] += 1
                queue.clear()
                queue.extend(self.search(strategy))

    def try_hold(self, plan: Plan) -> bool:
        tried: set[str] = set()
        while True:
            try:
                offer_id = self.hold(plan, len(self.made))
            except CapacityConflict as exc:
                if not swap_to_alternate(plan, exc.errors, tried):
                    return False
                try:
                    build_items(plan, self.names)
                except ValidationFailed:
                    return False
                if plan.key() in self.seen:
                    return False
                self.seen.add(plan.key())
                continue
            except Forbidden as exc:  # quota_exceeded: a smaller or later window may still pass
                self.refused = self.refused or exc
                return False
            except ValidationFailed as exc:  # e.g. an elastic grant off a unit rule: not offerable
                log.info("offer set %s: window not offerable: %s", self.set_id, exc.detail)
                return False
            self.made.append(offer_id)
            return True

    # -- searches per strategy ----------------------------------------------------------------------------
    def search(self, strategy: Strategy) -> list[Plan]:
        limit = {"limit": min(50, max(self.max_offers, 1))}
        if strategy == Strategy.EARLIEST:
            return self._plans(strategy, {**self.doc, **limit, "policy": "earliest"})
        if strategy == Strategy.BEST_FIT:
            return self._plans(strategy, {**self.doc, **limit, "policy": "best_fit"})
        if strategy == Strategy.LARGEST:
            grown = self._plans(strategy, {**elastic_document(self.doc), **limit})
            return sorted(grown, key=lambda p: (-grant_size(p), p.start_s))
        # longest: windows of the maximum duration first, then the others, longest first
        plans: list[Plan] = []
        if self.req.min_duration_s < self.req.max_duration_s:
            plans = self._plans(strategy, {**fixed_longest_document(self.doc, self.req), **limit})
        stretched = self._plans(strategy, {**self.doc, **limit})
        return plans + sorted(stretched, key=lambda p: (-(p.end_s - p.start_s), p.start_s))

    def _plans(self, strategy: Strategy, doc: dict[str, Any]) -> list[Plan]:
        find = self.find_slot
        try:
            req = find.parse(doc, now_s=self.now)
            result: FindSlotResult = find.find(doc, now_s=self.now)
        except ValidationFailed as exc:
            log.info("offer set %s: %s request not searchable: %s", self.set_id, strategy, exc.detail)
            return []
        if self.explanation is None and result.explanation is not None:
            self.explanation = result.explanation
        return [
            Plan(strategy, w, req, {c: list(h) for c, h in w.placement.items()}, {}) for w in result.windows
        ]


__all__ = [
    "Hold",
    "Names",
    "OfferMaker",
    "Plan",
    "build_items",
    "elastic_document",
    "swap_to_alternate",
]
