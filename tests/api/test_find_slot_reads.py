"""What one POST /v1/find-slot costs the database once the calendar index is warm (issue 18): a single
generation read. Validation and the search share one look at the cached index; two looks were two reads
per answer (on SQLite two transactions, on PostgreSQL extra round trips) on the hot path under load."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event

from slotbroker.demo.fabric import fabric_like_topology


def _request(start: datetime) -> dict[str, Any]:
    return {
        "components": [{"name": "vm", "resources": {"VCPU": 4, "MEMORY_MB": 8192}}],
        "earliest_start": start.isoformat(),
        "latest_end": (start + timedelta(days=1)).isoformat(),
        "duration": "PT2H",
    }


def test_a_warm_find_slot_reads_the_calendar_generation_once(
    app: FastAPI, client: TestClient, admin: dict[str, str]
) -> None:
    app.state.services.topology.import_(fabric_like_topology())
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    assert client.post("/v1/find-slot", json=_request(start), headers=admin).status_code == 200  # warm

    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        statements.append(sql)

    engine = app.state.services.db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        # a different body each time: the answer cache must not hide the reads
        answered = client.post("/v1/find-slot", json=_request(start + timedelta(minutes=7)), headers=admin)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert answered.status_code == 200, answered.text
    assert answered.json()["cached"] is False
    assert [s for s in statements if "calendar_state" in s] == [
        "SELECT COALESCE(SUM(generation), 0) FROM calendar_state"
    ]
