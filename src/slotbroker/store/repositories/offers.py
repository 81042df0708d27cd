"""Offer sets and their offers (holds waiting to be accepted), and the name lookups that turn an offer's
window into provider uuids."""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import BigInteger, Integer, bindparam, case, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from slotbroker.domain.claims import ConsumerKind, ConsumerStatus
from slotbroker.store.models import OfferSetRow
from slotbroker.store.prebuilt import session_connection
from slotbroker.store.tables import consumers, facility_ports, ivoa_offer_sets, offer_sets, offers, providers

OFFERED = "OFFERED"  # the stored values of wire.offers.OfferState
ACCEPTED = "ACCEPTED"
REJECTED = "REJECTED"
EXPIRED = "EXPIRED"


class OfferRepository:
    """``due`` runs on the session's connection: the expiry sweep's read runs every tick of the lease
    event loop, and the ORM's execution path costs about as much again as SQLite's work on it."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _core(self) -> Connection:
        return session_connection(self.session)

    # -- sets ---------------------------------------------------------------------------------------------
    def add_set(
        self, set_id: str, project: str, status: str, request: str, expires_s: int, name: str = ""
    ) -> None:
        self.session.add(
            OfferSetRow(
                id=set_id, project=project, status=status, request=request, expires_s=expires_s, name=name
            )
        )

    def rename_set(self, set_id: str, name: str) -> None:
        self.session.execute(
            update(offer_sets)
            .where(offer_sets.c.id == set_id)
            .values(name=name, generation=offer_sets.c.generation + 1)
        )

    def renew(self, set_id: str, now_s: int, expires_s: int) -> int:
        """Keep the set's live offers until ``expires_s``: each OFFERED offer whose hold is still live at
        ``now_s``, and its hold. The hold's UPDATE is guarded (``kind = 'hold' AND status = 'HELD' AND
        expires_s > now``) like an accept, so it cannot revive a hold a claim or the reaper has expired.
        How many offers were renewed."""
        held = select(offers.c.consumer_id).where(
            offers.c.offer_set_id == set_id, offers.c.state == OFFERED, offers.c.consumer_id.is_not(None)
        )
        extended = self.session.execute(
            update(consumers)
            .where(
                consumers.c.id.in_(held),
                consumers.c.kind == ConsumerKind.HOLD.value,
                consumers.c.status == ConsumerStatus.HELD.value,
                consumers.c.expires_s > now_s,
            )
            .values(expires_s=expires_s, generation=consumers.c.generation + 1)
            .returning(consumers.c.id)
        ).all()
        ids = [int(r.id) for r in extended]
        if not ids:
            return 0
        self.session.execute(
            update(offers)
            .where(offers.c.consumer_id.in_(ids), offers.c.state == OFFERED)
            .values(expires_s=expires_s)
        )
        self.session.execute(
            update(offer_sets)
            .where(offer_sets.c.id == set_id)
            .values(expires_s=expires_s, generation=offer_sets.c.generation + 1)
        )
        return len(ids)

    def drop_set(self, set_id: str) -> None:
        """Forget the set: its offers go with it (cascade), and so does its IVOA echo, which has no
        foreign key (``ivoa_offer_sets``), so that a dropped set leaves no row behind."""
        self.session.execute(ivoa_offer_sets.delete().where(ivoa_offer_sets.c.offer_set_id == set_id))
        self.session.execute(offer_sets.delete().where(offer_sets.c.id == set_id))

    def get_set(self, set_id: str) -> Any:
        return self.session.execute(select(offer_sets).where(offer_sets.c.id == set_id)).first()

    def set_request(self, set_id: str) -> str | None:
        found = self.session.scalar(select(offer_sets.c.request).where(offer_sets.c.id == set_id))
        return None if found is None else str(found)

    def lock_sets(self, set_ids: Collection[str]) -> None:
        """Serialise every transition of these sets (PostgreSQL row locks in id order)."""
        self.session.execute(
            select(offer_sets.c.id)
            .where(offer_sets.c.id.in_(sorted(set(set_ids))))
            .order_by(offer_sets.c.id)
            .with_for_update()
        )

    def states_in(self, set_id: str) -> list[str]:
        return [
            str(x)
            for x in self.session.scalars(select(offers.c.state).where(offers.c.offer_set_id == set_id))
        ]

    def mark_set(self, set_id: str, status: str, *, request: str | None = None) -> None:
        values: dict[str, Any] = {"status": status, "generation": offer_sets.c.generation + 1}
        if request is not None:
            values["request"] = request
        self.session.execute(update(offer_sets).where(offer_sets.c.id == set_id).values(**values))

    def add_ivoa_echo(self, set_id: str, project: str, created_s: int, document: str) -> None:
        """What an IVOA client sent with the set (``ivoa_offer_sets``), echoed in every session."""
        self.session.execute(
            ivoa_offer_sets.insert().values(
                offer_set_id=set_id, project=project, created_s=created_s, document=document
            )
        )

    def ivoa_echo(self, set_id: str) -> Any:
        """(offer_set_id, project, created_s, document) of the set's IVOA echo, or None."""
        return self.session.execute(
            select(ivoa_offer_sets).where(ivoa_offer_sets.c.offer_set_id == set_id)
        ).first()

    # -- offers -------------------------------------------------------------------------------------------
    def add_offer(self, **values: Any) -> None:
        self.session.execute(offers.insert().values(**values))

    def offers_in(self, set_id: str) -> list[Any]:
        """The set's offers by position, with their consumer's uuid and kind."""
        return list(
            self.session.execute(
                select(
                    offers, consumers.c.uuid.label("consumer_uuid"), consumers.c.kind.label("consumer_kind")
                )
                .select_from(offers.outerjoin(consumers, consumers.c.id == offers.c.consumer_id))
                .where(offers.c.offer_set_id == set_id)
                .order_by(offers.c.position)
            ).all()
        )

    def get_offer(self, offer_id: str) -> Any:
        return self.session.execute(select(offers).where(offers.c.id == offer_id)).one()

    def set_of(self, offer_id: str) -> Any:
        """(offer_set_id, project) of the offer, or None."""
        return self.session.execute(
            select(offers.c.offer_set_id, offer_sets.c.project)
            .select_from(offers.join(offer_sets, offer_sets.c.id == offers.c.offer_set_id))
            .where(offers.c.id == offer_id)
        ).first()

    def offer_state(self, offer_id: str) -> str | None:
        found = self.session.scalar(select(offers.c.state).where(offers.c.id == offer_id))
        return None if found is None else str(found)

    def accept(self, offer_id: str, set_id: str) -> list[int]:
        """Mark the offer accepted and its still-offered siblings rejected; the siblings' consumer ids."""
        self.session.execute(update(offers).where(offers.c.id == offer_id).values(state=ACCEPTED))
        siblings = self.session.execute(
            update(offers)
            .where(offers.c.offer_set_id == set_id, offers.c.id != offer_id, offers.c.state == OFFERED)
            .values(state=REJECTED)
            .returning(offers.c.consumer_id)
        ).all()
        return [int(r.consumer_id) for r in siblings if r.consumer_id is not None]

    def reject(self, offer_id: str) -> Any:
        """Mark a still-offered offer rejected: its (consumer_id, state), or None when it was not offered."""
        return self.session.execute(
            update(offers)
            .where(offers.c.id == offer_id, offers.c.state == OFFERED)
            .values(state=REJECTED)
            .returning(offers.c.consumer_id, offers.c.state)
        ).first()

    def due(self, now_s: int, *, set_ids: Sequence[str] | None = None, limit: int | None = None) -> list[Any]:
        """(id, offer_set_id, consumer_id) of offered offers past expiry or whose hold is gone."""
        params: dict[str, Any] = {"now": now_s, "set_ids": list(set_ids or ()), "limit": limit}
        return list(self._core().execute(_due(set_ids is not None, limit is not None), params).all())

    def expire(self, offer_ids: Collection[str], now_s: int) -> list[Any]:
        """Mark these offers expired where they still are due (guarded); (id, consumer_id, offer_set_id)."""
        hold_gone = select(consumers.c.id).where(consumers.c.status != ConsumerStatus.HELD.value)
        return list(
            self.session.execute(
                update(offers)
                .where(
                    offers.c.id.in_(list(offer_ids)),
                    offers.c.state == OFFERED,
                    or_(
                        offers.c.expires_s <= now_s,
                        offers.c.consumer_id.is_(None),
                        offers.c.consumer_id.in_(hold_gone),
                    ),
                )
                .values(state=EXPIRED)
                .returning(offers.c.id, offers.c.consumer_id, offers.c.offer_set_id)
            ).all()
        )

    # -- the holds behind offers ---------------------------------------------------------------------------
    def hold_to_lease(self, consumer_id: int | None, now_s: int) -> Any:
        """Guarded: a live hold becomes a lease (ACTIVE when it has started, else PENDING); its (id, uuid,
        status, start_s, end_s, project), or None when the hold expired or was released meanwhile."""
        return self.session.execute(
            update(consumers)
            .where(
                consumers.c.id == consumer_id,
                consumers.c.kind == ConsumerKind.HOLD.value,
                consumers.c.status == ConsumerStatus.HELD.value,
                consumers.c.expires_s > now_s,
            )
            .values(
                kind=ConsumerKind.LEASE.value,
                status=case(
                    (consumers.c.start_s <= now_s, ConsumerStatus.ACTIVE.value),
                    else_=ConsumerStatus.PENDING.value,
                ),
                expires_s=None,
                generation=consumers.c.generation + 1,
            )
            .returning(
                consumers.c.id,
                consumers.c.uuid,
                consumers.c.status,
                consumers.c.start_s,
                consumers.c.end_s,
                consumers.c.project,
            )
        ).first()

    def consumer_uuids(self, consumer_ids: Collection[int]) -> list[str]:
        """The consumers' uuids, in id order."""
        rows = self.session.execute(
            select(consumers.c.uuid).where(consumers.c.id.in_(sorted(consumer_ids))).order_by(consumers.c.id)
        )
        return [str(u) for (u,) in rows]

    # -- names in a window ---------------------------------------------------------------------------------
    def provider_uuids(self, names: Collection[str]) -> dict[str, str]:
        rows = self.session.execute(
            select(providers.c.name, providers.c.uuid).where(providers.c.name.in_(list(names)))
        )
        return {str(n): str(u) for n, u in rows}

    def port_uuids(self, sites: Collection[str]) -> dict[tuple[str, str], str]:
        """(site, port name) -> the port provider's uuid, for the facility ports of ``sites``."""
        site = providers.alias("site")
        port = providers.alias("port")
        rows = self.session.execute(
            select(site.c.name, facility_ports.c.port_name, port.c.uuid)
            .select_from(
                facility_ports.join(site, site.c.id == facility_ports.c.site_id).join(
                    port, port.c.id == facility_ports.c.provider_id
                )
            )
            .where(site.c.name.in_(sorted(sites)))
        )
        return {(str(a), str(b)): str(u) for a, b, u in rows}


@functools.lru_cache(maxsize=4)
def _due(in_sets: bool, limited: bool) -> Any:
    """The statement of ``OfferRepository.due``, built once (the event loop's sweep asks every tick)."""
    q = (
        select(offers.c.id, offers.c.offer_set_id, offers.c.consumer_id)
        .select_from(offers.outerjoin(consumers, consumers.c.id == offers.c.consumer_id))
        .where(
            offers.c.state == OFFERED,
            or_(
                offers.c.expires_s <= bindparam("now", type_=BigInteger),
                offers.c.consumer_id.is_(None),
                consumers.c.status != ConsumerStatus.HELD.value,
            ),
        )
        .order_by(offers.c.offer_set_id, offers.c.position)
    )
    if in_sets:
        q = q.where(offers.c.offer_set_id.in_(bindparam("set_ids", expanding=True)))
    if limited:
        q = q.limit(bindparam("limit", type_=Integer))
    return q
