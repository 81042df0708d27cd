"""The claim path's persistence: one set of statements (``statements.py``) and two executors, the
general one on a ``Session`` (``general.py``, the reference) and PostgreSQL's two round trips over libpq
(``pg_two_trips.py``). The general executor's functions are re-exported here, as other writers (leases,
offers, inventory) call them inside their own units of work."""

from slotbroker.store.claims.general import (
    Released,
    bump_calendar,
    expire_all_holds,
    insert_consumer,
    lock_provider_ids,
    lock_providers,
    pair_states,
    reap_expired_holds,
    release_consumer,
    vlan_holders,
    write_claim,
)

__all__ = [
    "Released",
    "bump_calendar",
    "expire_all_holds",
    "insert_consumer",
    "lock_provider_ids",
    "lock_providers",
    "pair_states",
    "reap_expired_holds",
    "release_consumer",
    "vlan_holders",
    "write_claim",
]
