"""The claim's and the lease's hot writes run statements compiled once (``store/prebuilt.py``): the SQL
is what SQLAlchemy itself renders, key lists are padded without changing an answer, a required
parameter is never left to its placeholder, typed parameters still pass their bind processors, and a
release told the consumer's id does exactly what one that looks it up does. On both databases (``db``)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as hs
from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from test_claims import NOW, T0, lease, make_host, make_site

from slotbroker.domain.claims import ClaimItem, ConsumerStatus
from slotbroker.domain.inventory import Inventory
from slotbroker.services.booking.claims import ClaimService
from slotbroker.store import calendar_changes
from slotbroker.store.claims import general
from slotbroker.store.claims import statements as st
from slotbroker.store.db import Database
from slotbroker.store.models import ConsumerRow
from slotbroker.store.prebuilt import PAD_UP_TO, compiled, pad, padded, run_compiled, run_raw
from slotbroker.store.repositories.leases import LeaseRepository
from slotbroker.store.tables import consumers
from slotbroker.store.unit_of_work import _REPOSITORIES, UnitOfWork

DIALECTS = [sqlite.dialect(), postgresql.psycopg.dialect()]  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
@pytest.mark.parametrize(
    "build",
    [st.lock_statement, st.pair_state_statement, st.write_statement, st.quota_probe_statement],
    ids=lambda b: b.__name__,
)
def test_a_builder_compiles_to_what_sqlalchemy_renders(dialect: Any, build: Any) -> None:
    for n in (1, 3, 8):
        ours = compiled(dialect, build, n)
        theirs = build(n).compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        assert ours.string == theirs.string
        assert ours.params == theirs.params
        assert ours.positiontup == tuple(theirs.positiontup or ())
        assert not ours.required


@given(hs.integers(min_value=1, max_value=3000))
def test_padding_is_a_power_of_two_up_to_the_cap_and_exact_beyond(n: int) -> None:
    p = padded(n)
    assert p >= n
    if n <= PAD_UP_TO:
        assert p & (p - 1) == 0
        assert p < 2 * n
    else:
        assert p == n
    keys = list(range(n))
    assert len(pad(keys)) == p
    assert set(pad(keys)) == set(keys)
    assert pad(keys)[:n] == keys


def test_the_longest_padded_statements_run(db: Database) -> None:
    """Padding must not push a statement past a database's limits (SQLite: expression depth 1000)."""
    n = PAD_UP_TO - 1  # padded up to PAD_UP_TO
    with UnitOfWork(db) as uow:
        assert general.lock_providers(uow.session, [f"no-such-{i}" for i in range(n)]) == {}
        pairs = [(10_000 + i, "VCPU") for i in range(n)]
        assert general.pair_states(uow.session, pairs, T0, T0 + 10, NOW) == {}


def _world(db: Database) -> tuple[ClaimService, list[str]]:
    site = make_site(db)[0]
    hosts = [
        make_host(db, site, {"VCPU": Inventory(total=8), "GPU_A30": Inventory(total=2)}) for _ in range(3)
    ]
    svc = ClaimService(db)
    for i, h in enumerate(hosts):
        svc.claim(lease(ClaimItem(h, "VCPU", 1 + i), start=T0 + i, end=T0 + 10 + i), now_s=NOW)
        svc.claim(lease(ClaimItem(h, "VCPU", 2), ClaimItem(h, "GPU_A30", 1), start=T0 + 5), now_s=NOW)
    return svc, hosts


def test_padded_reads_answer_as_the_exact_ones(db: Database) -> None:
    """Differential: every subset of the pairs, read through the padded statement and through the one
    compiled for exactly its length, gives the same states (and the same locked providers)."""
    _, hosts = _world(db)
    with UnitOfWork(db) as uow:
        locked = general.lock_providers(uow.session, hosts)
        ids = sorted(p.id for p in locked.values())
        all_pairs = [(i, rc) for i in ids for rc in ("VCPU", "GPU_A30", "MEMORY_MB")]
        conn = uow.session.connection()
        for k in (1, 3, 5, 7):
            for pairs in itertools.islice(itertools.combinations(all_pairs, k), 20):
                exact = st.states_of(
                    run_compiled(
                        conn, st.pair_state_statement, k, st.pair_params(list(pairs), T0, T0 + 20, NOW)
                    )
                )
                assert general.pair_states(uow.session, pairs, T0, T0 + 20, NOW) == exact
                assert set(exact) == {p for p in pairs if p[1] != "MEMORY_MB"}
        for k in (1, 2, 3):
            exact_locks = st.locked_of(
                run_compiled(conn, st.lock_statement, k, st.lock_params(sorted(hosts[:k])))
            )
            assert general.lock_providers(uow.session, hosts[:k]) == exact_locks


def test_a_required_parameter_left_out_is_refused(db: Database) -> None:
    with UnitOfWork(db) as uow, pytest.raises(TypeError, match="new_status"):
        run_compiled(uow.session.connection(), st.mark_released_statement, 0, {"b_uuid": "x"})


def test_the_consumer_row_is_written_with_its_typed_created_at(db: Database) -> None:
    """``created_at`` runs through its type's bind processor: the ORM reads back the instant written."""
    svc, hosts = _world(db)
    before = datetime.now(UTC) - timedelta(seconds=1)
    done = svc.claim(lease(ClaimItem(hosts[0], "VCPU", 1), start=T0 + 100, end=T0 + 110), now_s=NOW)
    with UnitOfWork(db, readonly=True) as uow:
        row = uow.session.scalars(select(ConsumerRow).where(ConsumerRow.uuid == done.consumer_uuid)).one()
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        assert before <= created <= datetime.now(UTC) + timedelta(seconds=1)
        assert (row.generation, row.start_s, row.end_s, row.status) == (0, T0 + 100, T0 + 110, "PENDING")


def test_a_typed_parameter_is_stored_as_sqlalchemy_stores_it(db: Database) -> None:
    """Differential: the same consumer values and instant, inserted by the prebuilt statement and by
    SQLAlchemy's own execution, leave the same stored value (read raw, as the driver returns it)."""
    at = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    values = {
        "kind": "lease",
        "name": "n",
        "project": "p",
        "status": "PENDING",
        "start_s": T0,
        "end_s": T0 + 1,
    }
    with UnitOfWork(db) as uow:
        conn = uow.session.connection()
        params = st.consumer_params({**values, "uuid": "a" * 36, "expires_s": None}, at)
        ((ours,),) = run_compiled(conn, st.insert_consumer_statement, 0, params)
        theirs = conn.execute(
            insert(consumers)
            .values(**values, uuid="b" * 36, generation=0, created_at=at)
            .returning(consumers.c.id)
        ).scalar_one()
        raw = dict(run_raw(conn, "SELECT id, created_at FROM consumers", ()))
        assert raw[ours] == raw[theirs]
        uow.rollback()


def _release(db: Database, uuid: str, consumer_id: int | None) -> tuple[Any, Any]:
    with UnitOfWork(db) as uow:
        done = general.release_consumer(
            uow.session, uuid, ConsumerStatus.ENDED.value, T0 + 7, consumer_id=consumer_id
        )
        changes = calendar_changes.of(uow.session)
        assert changes is not None
        described = (changes.removed, changes.added)
        uow.rollback()
        return done, described


def test_a_release_told_the_id_is_the_release_that_looks_it_up(db: Database) -> None:
    svc, hosts = _world(db)
    done = svc.claim(lease(ClaimItem(hosts[1], "VCPU", 1), start=T0, end=T0 + 20), now_s=NOW)
    with UnitOfWork(db, readonly=True) as uow:
        cid = int(
            uow.session.scalars(select(ConsumerRow.id).where(ConsumerRow.uuid == done.consumer_uuid)).one()
        )
    looked_up = _release(db, done.consumer_uuid, None)
    told = _release(db, done.consumer_uuid, cid)
    assert told == looked_up
    assert told[0].changed
    assert told[0].ended == 1
    with pytest.raises(AssertionError):
        _release(db, done.consumer_uuid, cid + 1)


def test_repositories_are_made_on_first_use(db: Database) -> None:
    uow = UnitOfWork(db, readonly=True)
    with pytest.raises(AttributeError):
        _ = uow.leases  # no session yet
    with uow:
        for name, make in _REPOSITORIES.items():
            repo = getattr(uow, name)
            assert isinstance(repo, make)  # type: ignore[arg-type]
            assert getattr(uow, name) is repo
            assert repo.session is uow.session
        first = uow.leases
        with pytest.raises(AttributeError):
            _ = uow.no_such_repository
    with uow:  # entered again: a fresh session, fresh repositories
        assert uow.leases is not first
        assert isinstance(uow.leases, LeaseRepository)
        assert uow.leases.session is uow.session


def test_rescheduling_moves_unfired_events_adds_missing_ones_and_keeps_fired_ones(db: Database) -> None:
    svc, hosts = _world(db)
    done = svc.claim(lease(ClaimItem(hosts[2], "VCPU", 1), start=T0, end=T0 + 20), now_s=NOW)
    fired_at = datetime(2030, 1, 1, tzinfo=UTC)
    with UnitOfWork(db) as uow:
        cid = int(uow.leases.find(done.consumer_uuid).id)
        uow.leases.add_event(cid, "start", T0, fired_at)
        uow.leases.add_event(cid, "before_end", T0 + 10)
        uow.leases.reschedule_events(cid, {"start": T0 + 1, "before_end": T0 + 25, "end": T0 + 30})
        got = {(e.kind, e.due_s, e.fired_at is not None) for e in uow.leases.events_of([cid])}
        assert got == {("start", T0, True), ("before_end", T0 + 25, False), ("end", T0 + 30, False)}
        uow.leases.reschedule_events(cid, {"end": T0 + 40})  # only the kinds given move
        moved = {(e.kind, e.due_s) for e in uow.leases.events_of([cid])}
        assert moved == {("start", T0), ("before_end", T0 + 25), ("end", T0 + 40)}
        uow.commit()
