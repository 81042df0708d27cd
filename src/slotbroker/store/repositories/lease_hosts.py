"""The hosts that may stand in for a lease's host (a swap when its host no longer fits); ``LeaseRepository``
inherits these methods, so callers keep one repository per lease (``uow.leases``)."""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from slotbroker.domain.providers import ProviderKind
from slotbroker.store.tables import inventories, provider_traits, providers


class HostRef(NamedTuple):
    uuid: str
    name: str


class StandInHosts:
    session: Session

    def alternate_hosts(
        self, host_uuid: str, classes: Collection[str], exclude: Collection[str]
    ) -> list[HostRef]:
        """Hosts that can stand in for ``host_uuid``: of the same site (parent), with exactly its traits
        and an inventory of every class in ``classes``, not in ``exclude`` (uuids), by name. Empty when
        ``host_uuid`` is not a host of a site. Only the shape is checked here; whether a candidate has
        room is for the claim to prove, under its locks."""
        session = self.session
        host = session.execute(
            select(providers.c.id, providers.c.kind, providers.c.parent_id).where(
                providers.c.uuid == host_uuid
            )
        ).first()
        if host is None or host.kind != ProviderKind.HOST.value or host.parent_id is None:
            return []
        traits_of = self._traits_by_provider(int(host.parent_id))
        candidates = session.execute(
            select(providers.c.id, providers.c.uuid, providers.c.name)
            .where(
                providers.c.parent_id == host.parent_id,
                providers.c.kind == ProviderKind.HOST.value,
                providers.c.id != host.id,
            )
            .order_by(providers.c.name)
        ).all()
        inv = self._classes_by_provider([int(c.id) for c in candidates])
        want_traits = traits_of.get(int(host.id), frozenset())
        wanted = set(classes)
        return [
            HostRef(str(c.uuid), str(c.name))
            for c in candidates
            if str(c.uuid) not in exclude
            and traits_of.get(int(c.id), frozenset()) == want_traits
            and wanted <= inv.get(int(c.id), frozenset())
        ]

    def _traits_by_provider(self, parent_id: int) -> dict[int, frozenset[str]]:
        rows = self.session.execute(
            select(provider_traits.c.provider_id, provider_traits.c.trait)
            .select_from(provider_traits.join(providers, providers.c.id == provider_traits.c.provider_id))
            .where(providers.c.parent_id == parent_id)
        ).all()
        out: dict[int, set[str]] = {}
        for pid, trait in rows:
            out.setdefault(int(pid), set()).add(str(trait))
        return {k: frozenset(v) for k, v in out.items()}

    def _classes_by_provider(self, ids: list[int]) -> dict[int, frozenset[str]]:
        if not ids:
            return {}
        rows = self.session.execute(
            select(inventories.c.provider_id, inventories.c.resource_class).where(
                inventories.c.provider_id.in_(ids)
            )
        ).all()
        out: dict[int, set[str]] = {}
        for pid, rc in rows:
            out.setdefault(int(pid), set()).add(str(rc))
        return {k: frozenset(v) for k, v in out.items()}


__all__ = ["HostRef", "StandInHosts"]
