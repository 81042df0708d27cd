"""Offers (IVOA ExecutionBroker style): windows turned into holds that expire; accepting one makes a lease.

``OfferService.create`` searches the request once per strategy (earliest, largest, longest, best_fit),
takes the strategies' windows in turn and holds each with ``ClaimService.claim_in`` (a hold consumer with
``expires_s``) in the same transaction that records the offer. The claim is the authority: a window
whose claim conflicts (another offer of this set, another set, a racing replica) first tries the
window's alternate hosts, then the strategy searches again against the refreshed calendar (which now
counts every open hold) and so is pushed past capacity already on offer.

Every offer-set transition locks the offer-set row first (``SELECT ... FOR UPDATE``; SQLite's
``BEGIN IMMEDIATE`` serialises writers anyway), then offers, then consumers, so accept, reject and
expiry of one set are serialised and cannot deadlock with each other. The hold -> lease step of an accept
is a guarded UPDATE (``kind = 'hold' AND status = 'HELD' AND expires_s > now``), so it cannot race the
claims' hold reaper either: exactly one of them changes the consumer. See docs/decisions/0009-offers.md.
"""

from __future__ import annotations

import json
import logging
import uuid as uuidlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, TypeVar

from slotbroker.domain.claims import (
    ClaimItem,
    ClaimRequest,
    ConsumerKind,
    ConsumerSpec,
    ConsumerStatus,
)
from slotbroker.domain.errors import (
    CapacityConflict,
    FieldError,
    Forbidden,
    NotFound,
    SlotbrokerError,
    ValidationFailed,
    item_index,
)
from slotbroker.domain.request import SlotRequest
from slotbroker.domain.time import now_s, to_datetime
from slotbroker.services.claims import ClaimService, retrying
from slotbroker.services.find_slot import FindSlotService
from slotbroker.services.find_slot_views import (
    ExplanationView,
    FindSlotResult,
    PortView,
    RouteView,
    WindowView,
)
from slotbroker.services.lease_schedule import schedule_lease_events
from slotbroker.services.offer_views import (
    AcceptedLease,
    OfferSetRequest,
    OfferSetStatus,
    OfferSetView,
    OfferState,
    OfferView,
    Strategy,
)
from slotbroker.services.quotas import QuotaItem, QuotaService
from slotbroker.services.window_items import Owner, grant_of, instance_amounts, window_items
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork

T = TypeVar("T")
log = logging.getLogger("slotbroker.offers")

OFFER_EXPIRED = "offer_expired"
OFFER_NOT_OPEN = "offer_not_open"
MAX_ATTEMPTS = 5
MAX_RESEARCHES = 3  # fresh searches per strategy and offer set after claims conflicted
SWEEP_LIMIT = 500


@dataclass
class OfferConflict(SlotbrokerError):
    """The offer cannot be accepted (or rejected): ``offer_expired`` or ``offer_not_open`` (HTTP 409)."""

    code: str = OFFER_NOT_OPEN


@dataclass(frozen=True)
class OfferSettings:
    ttl_s: int = 300  # how long an offer holds its capacity (Settings.offer_ttl_s)
    before_end_notice_s: int = 3600  # the accepted lease's before_end event (Settings.before_end_notice_s)
    max_attempts: int = MAX_ATTEMPTS


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
        return int(self.window.start.timestamp())

    @property
    def end_s(self) -> int:
        return int(self.window.end.timestamp())

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
    """Move one instance on a conflicting host to an untried alternate of its component; False if none."""
    for err in errors:
        index = item_index(err.pointer)
        owner = plan.owners[index] if index is not None and index < len(plan.owners) else None
        if owner is None:
            continue  # a link or a port: another host at the same site does not help
        hosts = plan.placement[owner.component]
        for alt in plan.window.alternates.get(owner.component, []):
            if alt in tried or alt in hosts:
                continue
            tried.add(alt)
            plan.placement = {**plan.placement, owner.component: list(hosts)}
            plan.placement[owner.component][owner.instance] = alt
            plan.swapped.add((owner.component, owner.instance))
            return True
    return False


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


def set_status(states: Sequence[str]) -> OfferSetStatus:
    if not states:
        return OfferSetStatus.EMPTY
    if OfferState.ACCEPTED in states:
        return OfferSetStatus.ACCEPTED
    if OfferState.OFFERED in states:
        return OfferSetStatus.OPEN
    if all(s == OfferState.EXPIRED for s in states):
        return OfferSetStatus.EXPIRED
    return OfferSetStatus.REJECTED


# -- the service -------------------------------------------------------------------------------------------


class OfferService:
    def __init__(
        self,
        db: Database,
        claims: ClaimService,
        find_slot: FindSlotService,
        settings: OfferSettings | None = None,
        *,
        quotas: QuotaService | None = None,
        clock: Callable[[], int] = now_s,
    ) -> None:
        self.db = db
        self.claims = claims
        self.find_slot = find_slot
        self.settings = settings or OfferSettings()
        self.quotas = quotas
        self.clock = clock

    # -- create -----------------------------------------------------------------------------------------
    def create(self, body: OfferSetRequest, *, project: str, now_s: int | None = None) -> OfferSetView:
        """Search, hold up to ``max_offers`` offers (each its own transaction) and record the set.

        Raises ``ValidationFailed`` (pointers under ``/request``) when the find-slot request is invalid,
        ``Forbidden`` (``lease_too_long``) when even its shortest window breaks the booking policy.
        A set where nothing fits is ``EMPTY`` and carries the search's explanation.
        """
        now = self.clock() if now_s is None else now_s
        try:
            req = self.find_slot.parse(body.request, now_s=now)
        except ValidationFailed as exc:
            raise ValidationFailed(
                exc.detail, [FieldError(f"/request{f.pointer}", f.detail) for f in exc.errors]
            ) from None
        # the booking policy up front: a search whose every window is too long to hold offers nothing
        fixed = req.min_duration_s == req.max_duration_s
        at = "/request/duration" if fixed else "/request/min_duration"
        self.claims.policy.check(now, now + req.min_duration_s, now, end_at=at)
        doc = self.find_slot.clamp(body.request, req, now)
        strategies = list(dict.fromkeys(body.strategies))
        expires = now + self.settings.ttl_s
        set_id = str(uuidlib.uuid4())
        with UnitOfWork(self.db) as uow:
            uow.offers.add_set(
                set_id,
                project,
                OfferSetStatus.OPEN.value,
                json.dumps({"request": doc, "strategies": strategies, "max_offers": body.max_offers}),
                expires,
            )
            uow.commit()

        maker = _OfferMaker(self, set_id, project, doc, req, body.max_offers, expires, now)
        made = maker.run(strategies)
        if not made and maker.refused is not None:  # nothing fits the project's quota: say so
            with UnitOfWork(self.db) as uow:
                uow.offers.drop_set(set_id)
                uow.commit()
            raise maker.refused
        with UnitOfWork(self.db) as uow:
            uow.offers.lock_sets([set_id])
            stored = json.loads(uow.offers.set_request(set_id) or "{}")
            if maker.explanation is not None and not made:
                stored["explanation"] = maker.explanation.model_dump(mode="json")
            _refresh_sets(uow, [set_id], request=json.dumps(stored))
            uow.commit()
        return self.offer_set(set_id, project=None, now_s=now)

    def hold(self, plan: Plan, *, set_id: str, position: int, project: str, expires_s: int, now: int) -> str:
        """Claim ``plan`` as a hold and record it as offer ``position`` in one transaction; its id.

        Raises ``CapacityConflict`` or ``ValidationFailed`` from the claim, or ``Forbidden``
        (``quota_exceeded``: holds count against the project's quotas); nothing is written then."""
        offer_id = str(uuidlib.uuid4())
        spec = ConsumerSpec(
            kind=ConsumerKind.HOLD,
            project=project,
            start_s=plan.start_s,
            end_s=plan.end_s,
            expires_s=expires_s,
            name=f"offer {offer_id}",
        )
        request = ClaimRequest(spec, tuple(plan.items))

        def attempt(n: int) -> str:
            with UnitOfWork(self.db) as uow:
                if self.quotas is not None:
                    quota_items = [
                        QuotaItem(it.resource_class, it.amount, f"/items/{i}")
                        for i, it in enumerate(plan.items)
                    ]
                    self.quotas.check_in(uow, project, quota_items, plan.start_s, plan.end_s, now)
                got = self.claims.claim_in(uow, request, now_s=now, attempts=n)
                uow.offers.add_offer(
                    id=offer_id,
                    offer_set_id=set_id,
                    position=position,
                    strategy=plan.strategy.value,
                    state=OfferState.OFFERED.value,
                    consumer_id=got.consumer_id,
                    window=json.dumps(plan.document()),
                    expires_s=expires_s,
                )
                uow.commit()
                return offer_id

        return self._retrying(attempt)

    # -- reads ------------------------------------------------------------------------------------------
    def offer_set(self, set_id: str, *, project: str | None, now_s: int | None = None) -> OfferSetView:
        """The set and its offers (``project`` None: any project). Expires what is past due first."""
        now = self.clock() if now_s is None else now_s
        self._expire_if_due(set_id, now)
        with UnitOfWork(self.db, readonly=True) as uow:
            row = uow.offers.get_set(set_id)
            if row is None or (project is not None and row.project != project):
                raise NotFound(f"no offer set {set_id}")
            offers = uow.offers.offers_in(set_id)
            stored = json.loads(row.request or "{}")
            why = stored.get("explanation")
            return OfferSetView(
                id=row.id,
                status=OfferSetStatus(row.status),
                project=row.project,
                created=row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC),
                expires=to_datetime(row.expires_s),
                strategies=[Strategy(s) for s in stored.get("strategies", [])],
                offers=[_offer_view(o) for o in offers],
                explanation=ExplanationView.model_validate(why) if why else None,
                href=f"/v1/offer-sets/{row.id}",
            )

    def offer(self, offer_id: str, *, project: str | None, now_s: int | None = None) -> OfferView:
        now = self.clock() if now_s is None else now_s
        set_id = self._set_of(offer_id, project)
        self._expire_if_due(set_id, now)
        with UnitOfWork(self.db, readonly=True) as uow:
            rows = [o for o in uow.offers.offers_in(set_id) if o.id == offer_id]
            if not rows:
                raise NotFound(f"no offer {offer_id}")
            return _offer_view(rows[0])

    # -- accept / reject --------------------------------------------------------------------------------
    def accept(self, offer_id: str, *, project: str | None, now_s: int | None = None) -> AcceptedLease:
        """Turn the offer's hold into a lease, reject its siblings and schedule the lease's events, in one
        transaction. Raises ``OfferConflict`` (``offer_expired`` / ``offer_not_open``) or ``NotFound``."""
        now = self.clock() if now_s is None else now_s
        set_id = self._set_of(offer_id, project)

        def attempt(_: int) -> AcceptedLease | OfferConflict:
            with UnitOfWork(self.db) as uow:
                uow.offers.lock_sets([set_id])
                self._expire_in(uow, now, [set_id])
                offer = uow.offers.get_offer(offer_id)
                if offer.state != OfferState.OFFERED:
                    uow.commit()  # keep any expiry just recorded, though the accept is refused
                    return _not_open(offer_id, offer.state)
                lease = uow.offers.hold_to_lease(offer.consumer_id, now)
                if lease is None:  # the hold expired or was released under us (the reaper won)
                    self._expire_in(uow, now, [set_id])
                    uow.commit()
                    return OfferConflict(f"offer {offer_id} expired", code=OFFER_EXPIRED)
                siblings = uow.offers.accept(offer_id, set_id)
                freed = self._release(uow, siblings, ConsumerStatus.REJECTED, now)
                _refresh_sets(uow, [set_id])
                schedule_lease_events(
                    uow,
                    int(lease.id),
                    int(lease.start_s),
                    int(lease.end_s),
                    self.settings.before_end_notice_s,
                )
                if not freed:
                    uow.calendar.bump()
                uow.commit()
                window = json.loads(offer.window)
                return AcceptedLease(
                    uuid=lease.uuid,
                    status=lease.status,
                    project=lease.project,
                    start=to_datetime(int(lease.start_s)),
                    end=to_datetime(int(lease.end_s)),
                    duration_s=int(lease.end_s) - int(lease.start_s),
                    placement=window["placement"],
                    sites=window["sites"],
                    resources=window["resources"],
                    routes=[RouteView.model_validate(r) for r in window["routes"]],
                    ports=[PortView.model_validate(p) for p in window["ports"]],
                    offer_id=offer_id,
                    offer_set_id=set_id,
                )

        got = self._retrying(attempt)
        if isinstance(got, OfferConflict):
            raise got
        return got

    def reject(self, offer_id: str, *, project: str | None, now_s: int | None = None) -> OfferView:
        """Release the offer's hold at once. Idempotent: a rejected or expired offer is returned as it is;
        an accepted one is ``offer_not_open`` (cancel the lease instead)."""
        now = self.clock() if now_s is None else now_s
        set_id = self._set_of(offer_id, project)

        def attempt(_: int) -> OfferConflict | None:
            with UnitOfWork(self.db) as uow:
                uow.offers.lock_sets([set_id])
                self._expire_in(uow, now, [set_id])
                got = uow.offers.reject(offer_id)
                if got is None:
                    state = uow.offers.offer_state(offer_id)
                    if state == OfferState.ACCEPTED:
                        return _not_open(offer_id, state)
                elif got.consumer_id is not None:
                    self._release(uow, [int(got.consumer_id)], ConsumerStatus.REJECTED, now)
                _refresh_sets(uow, [set_id])
                uow.commit()
                return None

        refused = self._retrying(attempt)
        if refused is not None:
            raise refused
        return self.offer(offer_id, project=project, now_s=now)

    # -- expiry -----------------------------------------------------------------------------------------
    def expire_due(self, now_s: int | None = None, *, limit: int = SWEEP_LIMIT) -> int:
        """Sweeper: mark offers past their expiry (or whose hold is gone) EXPIRED, release their holds
        exactly once and update their sets; how many offers expired."""
        now = self.clock() if now_s is None else now_s
        with UnitOfWork(self.db, readonly=True) as uow:
            sets = sorted({str(r.offer_set_id) for r in uow.offers.due(now, limit=limit)})
        if not sets:
            return 0

        def attempt(_: int) -> int:
            with UnitOfWork(self.db) as uow:
                uow.offers.lock_sets(sets)
                n = self._expire_in(uow, now, sets)
                uow.commit()
                return n

        return self._retrying(attempt)

    def _expire_if_due(self, set_id: str, now: int) -> None:
        with UnitOfWork(self.db, readonly=True) as uow:
            if not uow.offers.due(now, set_ids=[set_id]):
                return

        def attempt(_: int) -> None:
            with UnitOfWork(self.db) as uow:
                uow.offers.lock_sets([set_id])
                self._expire_in(uow, now, [set_id])
                uow.commit()

        self._retrying(attempt)

    def _expire_in(self, uow: UnitOfWork, now: int, set_ids: Sequence[str]) -> int:
        """Inside a transaction that holds the sets' locks: expire their due offers, release the holds."""
        due = uow.offers.due(now, set_ids=set_ids)
        if not due:
            return 0
        done = uow.offers.expire([str(r.id) for r in due], now)
        self._release(
            uow, [int(r.consumer_id) for r in done if r.consumer_id is not None], ConsumerStatus.EXPIRED, now
        )
        _refresh_sets(uow, sorted({str(r.offer_set_id) for r in done}))
        return len(done)

    # -- helpers ----------------------------------------------------------------------------------------
    def _release(self, uow: UnitOfWork, consumer_ids: list[int], status: ConsumerStatus, now: int) -> int:
        """Release the consumers (id order), each exactly once; how many this call changed."""
        if not consumer_ids:
            return 0
        changed = 0
        for consumer_uuid in uow.offers.consumer_uuids(consumer_ids):
            got = self.claims.release_in(uow, consumer_uuid, status=status, now_s=now)
            changed += not got.already_released
        return changed

    def _set_of(self, offer_id: str, project: str | None) -> str:
        with UnitOfWork(self.db, readonly=True) as uow:
            row = uow.offers.set_of(offer_id)
        if row is None or (project is not None and row.project != project):
            raise NotFound(f"no offer {offer_id}")
        return str(row.offer_set_id)

    def _retrying(self, attempt: Callable[[int], T]) -> T:
        return retrying(attempt, self.settings.max_attempts)


def _refresh_sets(uow: UnitOfWork, set_ids: Sequence[str], *, request: str | None = None) -> None:
    """Each set's status from its offers' states (``set_status``), next generation."""
    for sid in set_ids:
        uow.offers.mark_set(sid, set_status(uow.offers.states_in(sid)).value, request=request)


def _not_open(offer_id: str, state: str) -> OfferConflict:
    if state == OfferState.EXPIRED:
        return OfferConflict(f"offer {offer_id} expired", code=OFFER_EXPIRED)
    return OfferConflict(f"offer {offer_id} is {state}, not OFFERED", code=OFFER_NOT_OPEN)


def _offer_view(row: Any) -> OfferView:
    w = json.loads(row.window)
    start, end = int(w["start_s"]), int(w["end_s"])
    accepted = row.state == OfferState.ACCEPTED and row.consumer_kind == ConsumerKind.LEASE
    return OfferView(
        id=row.id,
        offer_set_id=row.offer_set_id,
        position=row.position,
        strategy=Strategy(row.strategy),
        state=OfferState(row.state),
        expires=to_datetime(int(row.expires_s)),
        start=to_datetime(start),
        end=to_datetime(end),
        duration_s=end - start,
        placement=w["placement"],
        sites=w["sites"],
        resources=w["resources"],
        routes=[RouteView.model_validate(r) for r in w["routes"]],
        ports=[PortView.model_validate(p) for p in w["ports"]],
        score=float(w["score"]),
        lease=row.consumer_uuid if accepted else None,
        href=f"/v1/offers/{row.id}",
    )


# -- making offers -----------------------------------------------------------------------------------------


class _OfferMaker:
    """Takes the strategies in turn, one offer each, until ``max_offers`` are held or none has more."""

    def __init__(
        self,
        svc: OfferService,
        set_id: str,
        project: str,
        doc: dict[str, Any],
        req: SlotRequest,
        max_offers: int,
        expires: int,
        now: int,
    ) -> None:
        self.svc = svc
        self.set_id = set_id
        self.project = project
        self.doc = doc
        self.req = req
        self.max_offers = max_offers
        self.expires = expires
        self.now = now
        self.names = Names(svc.db)
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
                offer_id = self.svc.hold(
                    plan,
                    set_id=self.set_id,
                    position=len(self.made),
                    project=self.project,
                    expires_s=self.expires,
                    now=self.now,
                )
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
        find = self.svc.find_slot
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
    "OFFER_EXPIRED",
    "OFFER_NOT_OPEN",
    "OfferConflict",
    "OfferService",
    "OfferSettings",
    "build_items",
    "elastic_document",
    "set_status",
]
