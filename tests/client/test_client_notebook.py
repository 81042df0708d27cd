"""The client in a notebook: HTML tables, ``to_pandas()`` and FABlib's ``find_available_slot``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cli_server import CliServer, demo_server
from slotbroker.client import Client
from slotbroker.wire.display import MAX_HTML_ROWS, html_table
from slotbroker.wire.find_slot import FindSlotResult

pandas = pytest.importorskip("pandas")  # the notebook extra; installed with dev


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliServer]:
    with demo_server(tmp_path_factory.mktemp("notebook")) as server:
        yield server


@pytest.fixture
def api(srv: CliServer) -> Iterator[Client]:
    with Client(srv.url, token=srv.user) as client:
        yield client


def gpu_request(hours: int = 2) -> dict[str, object]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    return {
        "components": [{"name": "gpu", "resources": {"VCPU": 8, "GPU_A30": 1}}],
        "earliest_start": start.isoformat(),
        "latest_end": (start + timedelta(days=2)).isoformat(),
        "duration": hours * 3600,
        "limit": 3,
    }


def test_find_slot_result_is_a_table_and_a_data_frame(api: Client) -> None:
    result = api.find_slot(gpu_request())
    assert isinstance(result, FindSlotResult)
    html = result._repr_html_()
    assert html.startswith("<table>")
    assert html.count("<tr>") == len(result.windows) + 1  # the header and one row a window
    assert "gpu: " in html
    frame = result.to_pandas()
    assert list(frame.columns) == ["start", "end", "duration_s", "sites", "hosts", "score"]
    assert len(frame) == len(result.windows)
    assert set(frame["duration_s"]) == {7200}


def test_lists_and_calendar_to_pandas(api: Client) -> None:
    offers = api.create_offer_set({"request": gpu_request(1), "strategies": ["earliest"], "max_offers": 1})
    assert offers.to_pandas()["offer"].tolist() == [offers.offers[0].id]
    lease = api.accept_offer(offers.offers[0].id)
    leases = api.list_leases()
    frame = leases.to_pandas()
    assert lease.uuid in frame["lease"].tolist()
    assert "<td>PENDING</td>" in api.get_lease(lease.uuid)._repr_html_()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    cal = api.calendar(
        now, now + timedelta(hours=3), resolution="hour", kind=["site"], resource_class=["GPU_A30"]
    )
    long = cal.to_pandas()
    assert len(long) == 3 * len(cal.rows)
    assert (long["free"] <= long["capacity"]).all()
    grid = cal.heatmap("GPU_A30")._repr_html_()
    stocked = [r for r in cal.rows if r.capacity > 0]
    assert grid.count("<td ") == 3 * len(stocked)  # a cell per site and hour
    assert all(f"<th>{r.name}</th>" in grid for r in stocked)
    sites = api.list_providers(kind=["site"], limit=5).to_pandas()
    assert set(sites["kind"]) == {"site"}
    api.cancel_lease(lease.uuid)


def test_find_available_slot_takes_fabrics_arguments(api: Client) -> None:
    start = datetime.now(UTC) + timedelta(hours=1)
    got = api.find_available_slot(
        start=start,
        end=start + timedelta(days=3),
        duration=4,
        resources=[{"type": "compute", "cores": 8, "ram": 32, "components": {"GPU_A30": 1}}],
        max_results=2,
    )
    assert 1 <= len(got.windows) <= 2
    # FABRIC's format: ISO 8601 strings in the offset of the request's start
    spans = [datetime.fromisoformat(w.end) - datetime.fromisoformat(w.start) for w in got.windows]
    assert spans == [timedelta(hours=4)] * len(got.windows)
    assert got.duration_hours == 4


def test_heat_map_colours_follow_the_free_share() -> None:
    from slotbroker.wire.display import HeatMap

    assert HeatMap.colour(0, 4) == "rgb(255,255,255)"
    assert HeatMap.colour(4, 4) == "rgb(100,255,100)"
    assert HeatMap.colour(1, 0) == "rgb(255,255,255)"


def test_html_escapes_and_caps_rows() -> None:
    html = html_table([{"name": "<script>x</script>"}], "t")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    many = html_table([{"i": i} for i in range(MAX_HTML_ROWS + 5)], "t")
    assert many.count("<tr>") == MAX_HTML_ROWS + 1
    assert f"first {MAX_HTML_ROWS} shown" in many


def test_to_pandas_says_how_to_install_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    result = FindSlotResult(
        windows=[],
        search_start=datetime.now(UTC),
        search_end=datetime.now(UTC),
        calendar_generation=0,
        candidates_tried=0,
    )
    with pytest.raises(ImportError, match=r"slotbroker\[notebook\]"):
        result.to_pandas()
