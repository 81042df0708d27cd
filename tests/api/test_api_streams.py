"""Open job event streams (SSE) are bounded apart from ordinary requests (api/limits.py), on a real
server: a watcher holding a stream open must not take the in-flight slot other requests need."""

from __future__ import annotations

from pathlib import Path

import httpx

from live_server import serve
from planner_support import NOW_S, make_lease
from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.domain.jobs import JobSpec, Workload
from slotbroker.services.access.tokens import Role, TokenService


def test_streams_have_their_own_bound_and_leave_in_flight_slots_free(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/streams.db",
        rate_per_s=10_000,
        rate_burst=10_000,
        max_in_flight=1,  # one ordinary request at a time
        max_streams=1,  # and one open stream
        event_loop_interval_s=0,
        planner_workers=0,  # nobody runs the job: it stays pending and its stream stays open
    )
    app = create_app(settings)
    db = app.state.services.db
    lease = make_lease(db, start_s=NOW_S + 3600, end_s=NOW_S + 7200)
    planner = app.state.services.planner
    planner.create(JobSpec(lease, next(iter(planner.provisioners)), Workload(command=("true",)), job_id="w"))
    secret = TokenService(db).create(project="alpha", role=Role.USER)
    headers = {"Authorization": f"Bearer {secret}"}

    with serve(app) as url, httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        with client.stream("GET", "/v1/jobs/w/events?timeout=30") as first:
            assert first.status_code == 200
            lines = first.iter_lines()  # kept: dropping the iterator would close the stream
            assert next(lines) == "retry: 1000"  # the stream is open and stays open

            # The open stream holds no in-flight slot: ordinary requests still get through.
            for _ in range(3):
                assert client.get("/v1/jobs/w").status_code == 200

            # A second stream is over the stream bound: refused, with a problem body and Retry-After.
            second = client.get("/v1/jobs/w/events?timeout=1")
            assert second.status_code == 503
            assert second.headers["retry-after"] == "5"
            assert second.json()["code"] == "overloaded"
            assert "event streams" in second.json()["detail"]

        # Closed by the client: its slot is free again.
        for _ in range(50):
            with client.stream("GET", "/v1/jobs/w/events?timeout=0.3") as again:
                if again.status_code == 200:
                    break
        assert again.status_code == 200
