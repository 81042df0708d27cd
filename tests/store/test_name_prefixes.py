"""Id prefixes are a range on the id, which a plain B-tree index serves on SQLite and PostgreSQL, narrowed
to the exact prefix: '%' and '_' in a prefix match only themselves.

The regression: the prefix was ``LIKE 'abc%' ESCAPE '/'``, which PostgreSQL answers from a B-tree index
only with ``text_pattern_ops`` (or a "C" collation), and SQLite only on a NOCASE column: both scanned."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event

from slotbroker.store.db import Database
from slotbroker.store.repositories.names import Kind, prefix_bounds
from slotbroker.store.unit_of_work import UnitOfWork

IDS = ["abc%def-1", "abc_def-2", "abcXdef-3", "abc%dz", "abd", "abc", "ABC%def", "3fa85f64-5717-4562"]


@given(st.text(min_size=1, max_size=8), st.text(max_size=8))
def test_the_range_holds_every_string_with_the_prefix(prefix: str, rest: str) -> None:
    low, high = prefix_bounds(prefix)
    value = prefix + rest
    assert low <= value
    assert high is None or value < high


@given(st.text(alphabet="0123456789abcdef-", min_size=1, max_size=12))
def test_a_uuid_prefix_always_has_an_upper_bound_unless_it_is_all_hyphens(prefix: str) -> None:
    assert (prefix_bounds(prefix)[1] is None) == (set(prefix) == {"-"})


@pytest.fixture
def sets(db: Database) -> Database:
    with UnitOfWork(db) as uow:
        for i, set_id in enumerate(IDS):
            uow.offers.add_set(set_id, "p", "OPEN", "{}", 0, name=f"set-{i}")
        uow.offers.add_set("abc%other", "q", "OPEN", "{}", 0)  # another project's
        uow.commit()
    return db


def matches(db: Database, prefix: str, project: str | None = "p") -> list[str]:
    with UnitOfWork(db, readonly=True) as uow:
        return uow.names.matches(Kind.OFFER_SET, "", project, prefix=prefix, with_prefix=True, limit=20)


@pytest.mark.parametrize(
    ("prefix", "want"),
    [
        ("abc%", ["abc%def-1", "abc%dz"]),
        ("abc_", ["abc_def-2"]),
        ("abc%d", ["abc%def-1", "abc%dz"]),
        ("abc%dz", ["abc%dz"]),
        ("abc", ["abc", "abc%def-1", "abc%dz", "abcXdef-3", "abc_def-2"]),
        ("ABC%", ["ABC%def"]),
        ("3fa85f64-", ["3fa85f64-5717-4562"]),
        ("zz", []),
    ],
)
def test_a_prefix_matches_literally(sets: Database, prefix: str, want: list[str]) -> None:
    assert matches(sets, prefix) == sorted(want)


def test_a_prefix_is_scoped_to_the_project_and_names_still_match(sets: Database) -> None:
    assert matches(sets, "abc%", project=None) == ["abc%def-1", "abc%dz", "abc%other"]
    with UnitOfWork(sets, readonly=True) as uow:
        got = uow.names.matches(Kind.OFFER_SET, "set-4", "p", prefix="abc_", with_prefix=True, limit=20)
    assert got == ["abc_def-2", "abd"]


def plans(db: Database, prefix: str) -> list[str]:
    """The plan of each prefix statement ``matches`` runs (names are another query), sequential scans
    discouraged on PostgreSQL (a table this small is cheaper to scan; the point is whether the index
    can serve)."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if "offer_sets" in statement and ("substr" in statement.lower() or "like" in statement.lower()):
            seen.append((statement, params))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        matches(db, prefix, project=None)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    out = []
    with db.engine.connect() as conn:
        for statement, params in seen:
            if db.engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SET enable_seqscan = off")
                rows = conn.exec_driver_sql("EXPLAIN " + statement, params).all()
            else:
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
            out.append("\n".join(str(r[-1]) for r in rows))
    return out


def test_the_prefix_is_served_by_the_id_index(sets: Database) -> None:
    found = plans(sets, "abc%d")
    assert found, "no statement recorded"
    for plan in found:
        if sets.engine.dialect.name == "postgresql":
            assert "Index Cond" in plan, plan
            assert ">=" in plan.split("Index Cond", 1)[1], plan
        else:
            assert "SEARCH" in plan, plan
            assert "INDEX" in plan.upper(), plan
