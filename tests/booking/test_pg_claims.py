"""The two-round-trip PostgreSQL claim (``store/claims/pg_two_trips.py``) against the general path.

The general path (``ClaimService.claim_in`` in a unit of work) is the reference: a hypothesis property
runs every generated claim through it inside a transaction that is rolled back, then through the
two-round-trip path for real, on the same rows, and requires the same answer (success, or the same
error class with the same field pointers and details). The rest pins what the fast path must never
get wrong: quoting of hostile strings, statements that vanished from the connection, connections given
back clean, expired holds left to the general path, and nothing written by a refused claim. The
concurrency proofs (exactly K of N racing claims win, the SQL audit stays clean) run in
``test_claim_races.py``, whose ``ClaimService`` takes this path on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from slotbroker.domain.claims import ClaimItem, ClaimRequest, ConsumerKind, ConsumerSpec, ConsumerStatus
from slotbroker.domain.errors import SlotbrokerError
from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import ProviderKind
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.inventory.service import InventoryService
from slotbroker.store.claims import pg_two_trips
from slotbroker.store.db import Database
from slotbroker.store.models import ConsumerRow
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire import providers as cmd

T0 = 1_900_000_000
NOW = T0 - 1000
_names = itertools.count()


def _host(db: Database, site: str, inventories: dict[str, Inventory]) -> str:
    body = cmd.CreateProvider(
        name=f"h{next(_names)}", kind=ProviderKind.HOST, parent_uuid=site, inventories=inventories
    )
    return InventoryService(db).create_provider(body).uuid


def _site(db: Database) -> str:
    body = cmd.CreateProvider(name=f"S{next(_names)}", kind=ProviderKind.SITE)
    return InventoryService(db).create_provider(body).uuid


def _request(kind: ConsumerKind, items: list[ClaimItem], start: int, end: int) -> ClaimRequest:
    expires = NOW + 30 if kind == ConsumerKind.HOLD else None
    return ClaimRequest(ConsumerSpec(kind, "science", start, end, expires_s=expires), tuple(items))


def _answer(fn: object) -> tuple[str, object]:
    """("ok", allocations) or (error class, its field errors)."""
    try:
        result = fn()  # type: ignore[operator]
    except SlotbrokerError as exc:
        return type(exc).__name__, [(e.pointer, e.detail) for e in exc.errors]
    return "ok", result.allocations


def _general(db: Database, request: ClaimRequest, now: int) -> tuple[str, object]:
    """The reference: the general path's answer, written nowhere (the unit of work is not committed)."""
    svc = ClaimService(db, pg_two_trips=False)
    with UnitOfWork(db) as uow:
        return _answer(lambda: svc.claim_in(uow, request, now_s=now))


def _prepared_on(db: Database) -> set[str]:
    """The statements the claims pool's (single) idle connection has prepared, asked of the server."""
    raw = db.claims_engine.raw_connection()
    try:
        conn = raw.dbapi_connection
        assert isinstance(conn, psycopg.Connection)
        rows = conn.pgconn.exec_(b"SELECT name FROM pg_prepared_statements")
        return {bytes(rows.get_value(i, 0) or b"").decode() for i in range(rows.ntuples)}
    finally:
        raw.close()


# -- the property -------------------------------------------------------------------------------------------

# (host index, class): mostly pairs that exist, so that claims get as far as the capacity check; now
# and then one that does not (host 3 is unknown, host 1 has no memory) for the validation answers.
VALID = [(0, "VCPU"), (0, "MEMORY_MB"), (1, "VCPU"), (2, "VCPU"), (2, "GPU_A100")]
INVALID = [(3, "VCPU"), (1, "MEMORY_MB")]
claims = st.lists(
    st.tuples(
        st.sampled_from([ConsumerKind.LEASE, ConsumerKind.LEASE, ConsumerKind.HOLD]),
        st.lists(st.tuples(st.sampled_from(VALID * 8 + INVALID), st.integers(1, 4)), min_size=1, max_size=3),
        st.integers(0, 20),  # start offset
        st.integers(1, 20),  # duration
        st.integers(0, 60),  # how far "now" has moved (holds expire at NOW + 30)
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=claims)
def test_two_round_trips_answer_what_the_general_path_answers(
    pg: Database, script: list[tuple[ConsumerKind, list[tuple[tuple[int, str], int]], int, int, int]]
) -> None:
    site = _site(pg)
    hosts = [
        _host(pg, site, {"VCPU": Inventory(total=8), "MEMORY_MB": Inventory(total=16, max_unit=6)}),
        _host(pg, site, {"VCPU": Inventory(total=4, step_size=2)}),
        _host(pg, site, {"VCPU": Inventory(total=6, reserved=2), "GPU_A100": Inventory(total=2)}),
        "no-such-provider",  # unknown: a validation error on both paths
    ]
    fast = ClaimService(pg)
    assert fast._two_trips is not None
    for step, (kind, items, offset, duration, later) in enumerate(script):
        request = _request(
            kind,
            [ClaimItem(hosts[h], rc, amount) for (h, rc), amount in items],
            T0 + offset,
            T0 + offset + duration,
        )
        now = NOW + later
        expected = _general(pg, request, now)
        event(expected[0])
        if step % 2:  # the event-loop driver (the API's fast path) on every other claim
            got = _answer(lambda r=request, n=now: asyncio.run(fast.claim_async(r, now_s=n)))
        else:
            got = _answer(lambda r=request, n=now: fast.claim(r, now_s=n))
        assert got == expected, request
    with UnitOfWork(pg, readonly=True) as uow:
        assert uow.allocations.overbooked() == []


# -- what the fast path must not get wrong -------------------------------------------------------------


@pytest.mark.parametrize("hostile", ["a'b", "x'); DROP TABLE providers; --", "back\\slash", "$1", "ünï"])
def test_hostile_strings_are_literals_not_sql(pg: Database, hostile: str) -> None:
    site = _site(pg)
    host = _host(pg, site, {"VCPU": Inventory(total=4)})
    svc = ClaimService(pg)
    unknown = _answer(
        lambda: svc.claim(
            _request(ConsumerKind.LEASE, [ClaimItem(hostile, "VCPU", 1)], T0, T0 + 9), now_s=NOW
        )
    )
    assert unknown == ("ValidationFailed", [("/items/0/provider_uuid", f"no provider {hostile}")])
    no_class = _answer(
        lambda: svc.claim(_request(ConsumerKind.LEASE, [ClaimItem(host, hostile, 1)], T0, T0 + 9), now_s=NOW)
    )
    assert no_class[0] == "ValidationFailed"
    named = ClaimRequest(
        ConsumerSpec(ConsumerKind.LEASE, "science", T0, T0 + 9, name=hostile), (ClaimItem(host, "VCPU", 1),)
    )
    result = svc.claim(named, now_s=NOW)
    with UnitOfWork(pg, readonly=True) as uow:
        row = uow.session.scalars(select(ConsumerRow).where(ConsumerRow.uuid == result.consumer_uuid)).one()
        assert row.name == hostile
        assert uow.providers.get(host) is not None  # nothing dropped


def test_statements_gone_from_the_connection_are_prepared_again(pg: Database) -> None:
    site = _site(pg)
    host = _host(pg, site, {"VCPU": Inventory(total=4)})
    svc = ClaimService(pg)
    svc.claim(_request(ConsumerKind.LEASE, [ClaimItem(host, "VCPU", 1)], T0, T0 + 9), now_s=NOW)
    assert {"sb_lock_1", "sb_state_1", "sb_write_1"} <= _prepared_on(pg)
    raw = pg.claims_engine.raw_connection()  # what a pooler or DISCARD ALL would do to the session
    raw.dbapi_connection.pgconn.exec_(b"DEALLOCATE ALL")  # type: ignore[union-attr]
    raw.close()
    assert not any(name.startswith("sb_") for name in _prepared_on(pg))
    result = svc.claim(_request(ConsumerKind.LEASE, [ClaimItem(host, "VCPU", 1)], T0, T0 + 9), now_s=NOW)
    assert result.allocations == 1
    assert {"sb_lock_1", "sb_state_1", "sb_write_1"} <= _prepared_on(pg)
    assert svc._two_trips is not None  # still on the fast path


def test_a_refused_claim_writes_nothing_and_keeps_the_statements(pg: Database) -> None:
    site = _site(pg)
    host = _host(pg, site, {"VCPU": Inventory(total=4)})
    svc = ClaimService(pg)
    svc.claim(_request(ConsumerKind.LEASE, [ClaimItem(host, "VCPU", 4)], T0, T0 + 9), now_s=NOW)
    with UnitOfWork(pg, readonly=True) as uow:
        before = (uow.calendar.generation(), uow.allocations.count())
    refused = _answer(
        lambda: svc.claim(
            _request(ConsumerKind.LEASE, [ClaimItem(host, "VCPU", 1)], T0 + 5, T0 + 20), now_s=NOW
        )
    )
    assert refused[0] == "CapacityConflict"
    with UnitOfWork(pg, readonly=True) as uow:
        assert (uow.calendar.generation(), uow.allocations.count()) == before
    assert {"sb_lock_1", "sb_state_1", "sb_write_1"} <= _prepared_on(pg)  # our ROLLBACK left them


def test_connections_go_back_idle_and_out_of_autocommit(pg: Database) -> None:
    site = _site(pg)
    host = _host(pg, site, {"VCPU": Inventory(total=1)})
    svc = ClaimService(pg)
    svc.claim(_request(ConsumerKind.LEASE, [ClaimItem(host, "VCPU", 1)], T0, T0 + 9), now_s=NOW)
    _answer(
        lambda: svc.claim(_request(ConsumerKind.LEASE, [ClaimItem(host, "VCPU", 1)], T0, T0 + 9), now_s=NOW)
    )
    assert pg.claims_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    raw = pg.claims_engine.raw_connection()
    try:
        conn = raw.dbapi_connection
        assert isinstance(conn, psycopg.Connection)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.autocommit is False
    finally:
        raw.close()


def test_expired_holds_in_the_way_are_reaped_by_the_general_path(pg: Database) -> None:
    site = _site(pg)
    host = _host(pg, site, {"VCPU": Inventory(total=2)})
    svc = ClaimService(pg)
    held = svc.claim(_request(ConsumerKind.HOLD, [ClaimItem(host, "VCPU", 2)], T0, T0 + 9), now_s=NOW)
    taken = svc.claim(_request(ConsumerKind.LEASE, [ClaimItem(host, "VCPU", 2)], T0, T0 + 9), now_s=NOW + 31)
    assert taken.allocations == 1
    with UnitOfWork(pg, readonly=True) as uow:
        status = uow.session.scalars(
            select(ConsumerRow.status).where(ConsumerRow.uuid == held.consumer_uuid)
        ).one()
        assert status == ConsumerStatus.EXPIRED.value
        assert uow.allocations.overbooked() == []


def test_vlan_claims_take_the_general_path(pg: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A VLAN tag needs the holders query after the locks, which only the general path runs."""
    calls: list[int] = []
    real = pg_two_trips.Session.begin_read

    def counting(self: pg_two_trips.Session, *args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pg_two_trips.Session, "begin_read", counting)
    site = _site(pg)
    host = _host(pg, site, {"VCPU": Inventory(total=2)})
    svc = ClaimService(pg)
    svc.claim(_request(ConsumerKind.LEASE, [ClaimItem(host, "VCPU", 1)], T0, T0 + 9), now_s=NOW)
    assert calls == [1]
    tagged = _answer(
        lambda: svc.claim(
            _request(ConsumerKind.LEASE, [ClaimItem(host, "VCPU", 1, 100)], T0, T0 + 9), now_s=NOW
        )
    )
    assert tagged[0] == "ValidationFailed"  # a host is not a facility port
    assert calls == [1]


def test_claims_racing_on_one_event_loop_take_exactly_the_capacity(pg: Database) -> None:
    """The event-loop driver under concurrency: 40 claims of 1 on a host with 7 free, all at once on
    one loop (more than the loop's 16 pool slots): exactly 7 win, the rest are capacity conflicts."""
    site = _site(pg)
    host = _host(pg, site, {"VCPU": Inventory(total=7)})
    svc = ClaimService(pg)

    async def race() -> list[tuple[str, object]]:
        async def one(i: int) -> tuple[str, object]:
            request = _request(ConsumerKind.LEASE, [ClaimItem(host, "VCPU", 1)], T0 + i % 3, T0 + 50)
            try:
                await svc.claim_async(request, now_s=NOW)
            except SlotbrokerError as exc:
                return type(exc).__name__, exc.code
            return "ok", None

        return await asyncio.gather(*(one(i) for i in range(40)))

    answers = asyncio.run(race())
    assert sorted(a for a, _ in answers).count("ok") == 7
    assert {a for a in answers if a[0] != "ok"} == {("CapacityConflict", "capacity_conflict")}
    with UnitOfWork(pg, readonly=True) as uow:
        assert uow.allocations.overbooked() == []
        assert uow.allocations.count() == 7
