"""The store: migrations up and down on both backends, models matching the migration, repositories."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, inspect, select, text

from slotbroker.domain.errors import ConcurrentUpdate
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.store.models import (
    AllocationRow,
    Base,
    ConsumerRow,
    InventoryRow,
    ProviderAggregateRow,
    ProviderRow,
    ProviderTraitRow,
)
from slotbroker.store.unit_of_work import UnitOfWork

TABLES = {
    "allocations",
    "api_tokens",
    "calendar_state",
    "consumers",
    "facility_ports",
    "inventories",
    "links",
    "provider_aggregates",
    "provider_traits",
    "providers",
    "resource_classes",
    "traits",
}


def tables(db: Database) -> set[str]:
    return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


def test_migrations_up_down_up(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert migrate.current_revision(db.engine) is None
        migrate.upgrade(db.engine)
        assert migrate.current_revision(db.engine) == migrate.head_revision()
        assert migrate.at_head(db.engine)
        assert tables(db) >= TABLES  # later revisions may add more
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM resource_classes")).scalar() == 5
            assert conn.execute(text("SELECT count(*) FROM traits")).scalar() == 16
            assert conn.execute(text("SELECT SUM(generation) FROM calendar_state")).scalar() == 0

        migrate.downgrade(db.engine, "base")
        assert migrate.current_revision(db.engine) is None
        assert tables(db) == set()

        migrate.upgrade(db.engine)
        assert migrate.at_head(db.engine)
        assert tables(db) >= TABLES
        migrate.upgrade(db.engine)  # idempotent at head
        assert migrate.at_head(db.engine)
    finally:
        db.dispose()


def test_models_match_the_migration(db: Database) -> None:
    """Autogenerate finds nothing to do: models.py and the migration describe the same schema."""
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


@pytest.fixture
def uow(db: Database) -> Iterator[UnitOfWork]:
    with UnitOfWork(db) as unit:
        yield unit


def add_provider(
    uow: UnitOfWork, name: str, kind: str = "site", parent: ProviderRow | None = None
) -> ProviderRow:
    return uow.providers.add(
        ProviderRow(uuid=str(uuid.uuid4()), name=name, kind=kind, parent_id=parent.id if parent else None)
    )


def test_bump_generation_compare_and_swap(db: Database) -> None:
    with UnitOfWork(db) as uow:
        row = add_provider(uow, "S")
        assert row.generation == 0
        assert uow.providers.bump_generation(row, 0) == 1
        assert row.generation == 1
        with pytest.raises(ConcurrentUpdate):
            uow.providers.bump_generation(row, 0)
        uow.commit()
        uuid_ = row.uuid

    # a reader saw generation 1; someone else moves it to 2; the reader's write loses
    with UnitOfWork(db, readonly=True) as reader:
        stale = reader.providers.get(uuid_)
        assert stale is not None
        seen = stale.generation
    with UnitOfWork(db) as other:
        fresh = other.providers.get(uuid_)
        assert fresh is not None
        other.providers.bump_generation(fresh, seen)
        other.commit()
    with UnitOfWork(db) as late:
        row2 = late.providers.get(uuid_)
        assert row2 is not None
        with pytest.raises(ConcurrentUpdate, match="generation 1 is stale"):
            late.providers.bump_generation(row2, seen)
    with UnitOfWork(db, readonly=True) as check:
        final = check.providers.get(uuid_)
        assert final is not None
        assert final.generation == 2


def test_provider_queries(uow: UnitOfWork) -> None:
    region = add_provider(uow, "r", "region")
    site = add_provider(uow, "s", "site", region)
    host = add_provider(uow, "h", "host", site)
    host.traits.append(ProviderTraitRow(trait="COMPUTE_VM"))
    host.aggregates.append(ProviderAggregateRow(aggregate="agg"))
    site.aggregates.append(ProviderAggregateRow(aggregate="agg"))
    host.inventories.append(InventoryRow(resource_class="VCPU", total=4, max_unit=4))
    uow.session.flush()
    assert uow.providers.has_children(region.id)
    assert not uow.providers.has_children(host.id)
    assert [p.name for p in uow.providers.find(kinds=["host", "site"])] == ["h", "s"]
    assert [p.name for p in uow.providers.find(parent_id=site.id)] == ["h"]
    assert [p.name for p in uow.providers.find(roots_only=True)] == ["r"]
    assert [p.name for p in uow.providers.find(traits=["COMPUTE_VM"])] == ["h"]
    assert [p.name for p in uow.providers.find(aggregates=["agg", "x"])] == ["h", "s"]
    assert [p.name for p in uow.providers.find(after_name="h", limit=1)] == ["r"]
    assert uow.catalog.aggregates() == [("agg", 2)]
    assert uow.catalog.trait_in_use("COMPUTE_VM")
    assert uow.allocations.class_in_use("VCPU")
    assert not uow.allocations.class_in_use("DISK_GB")
    g = uow.calendar.generation()
    uow.calendar.bump()
    assert uow.calendar.generation() == g + 1


# -- peak usage ------------------------------------------------------------------------------------------

Span = tuple[int, int, int]  # amount, start, end


def book(uow: UnitOfWork, provider: ProviderRow, resource_class: str, spans: list[Span]) -> None:
    lease = ConsumerRow(
        uuid=str(uuid.uuid4()), kind="lease", project="p", status="active", start_s=0, end_s=1
    )
    lease.allocations = [
        AllocationRow(provider_id=provider.id, resource_class=resource_class, amount=a, start_s=s, end_s=e)
        for a, s, e in spans
    ]
    uow.session.add(lease)
    uow.session.flush()


def brute_peak(spans: list[Span], since: int) -> int:
    horizon = max([since, *(e for _, _, e in spans)]) + 1
    return max(
        (sum(a for a, s, e in spans if s <= t < e) for t in range(since, horizon)),
        default=0,
    )


def test_peak_usage_example(uow: UnitOfWork) -> None:
    host, other = add_provider(uow, "h"), add_provider(uow, "o")
    spans = [(10, 100, 300), (6, 200, 400), (12, 500, 600), (3, 250, 260), (7, 0, 150)]
    book(uow, host, "VCPU", spans)
    book(uow, host, "MEMORY_MB", [(1000, 0, 1000)])  # other class
    book(uow, other, "VCPU", [(1000, 0, 1000)])  # other provider
    peak = uow.allocations.peak_usage
    assert peak(host.id, "VCPU", 0) == 19  # 10 + 6 + 3 at 250
    assert peak(host.id, "VCPU", 100) == 19
    assert peak(host.id, "VCPU", 260) == 16
    assert peak(host.id, "VCPU", 300) == 12
    assert peak(host.id, "VCPU", 600) == 0
    assert peak(host.id, "DISK_GB", 0) == 0
    # a booking already running at `since` counts from `since`
    assert peak(host.id, "VCPU", 120) == 19
    assert peak(other.id, "VCPU", 999) == 1000
    assert uow.allocations.in_use(host.id)
    assert uow.allocations.in_use(host.id, "MEMORY_MB")
    assert not uow.allocations.in_use(host.id, "DISK_GB")
    for since in range(0, 700, 25):
        assert peak(host.id, "VCPU", since) == brute_peak(spans, since), since


spans_strategy = st.lists(
    st.tuples(st.integers(1, 9), st.integers(0, 40), st.integers(1, 15)).map(
        lambda t: (t[0], t[1], t[1] + t[2])
    ),
    max_size=8,
)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spans=spans_strategy, noise=spans_strategy, since=st.integers(0, 60))
def test_peak_usage_matches_brute_force(
    db: Database, spans: list[Span], noise: list[Span], since: int
) -> None:
    with UnitOfWork(db) as uow:
        uow.session.execute(delete(AllocationRow))
        uow.session.execute(delete(ConsumerRow))
        host = uow.providers.get_by_name("h") or add_provider(uow, "h")
        other = uow.providers.get_by_name("o") or add_provider(uow, "o")
        book(uow, host, "VCPU", spans)
        book(uow, host, "DISK_GB", noise)
        book(uow, other, "VCPU", noise)
        assert uow.allocations.peak_usage(host.id, "VCPU", since) == brute_peak(spans, since)
        uow.commit()


def test_sqlite_file_is_created(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/nested/dir/x.db")
    try:
        migrate.upgrade(db.engine)
        assert (tmp_path / "nested" / "dir" / "x.db").exists()
        with UnitOfWork(db, readonly=True) as uow:
            assert uow.session.scalar(select(ProviderRow.id)) is None
    finally:
        db.dispose()
