"""The portal's calendar rows for facility ports and links, the Find form's facility ports, links and site
rules (with errors beside their fields), and the leases list's filters kept in the URL, in headless
Chromium against a live demo server (see ``conftest.py``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from .conftest import Portal, field_of, shot, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def _next_hour(hours: int = 1) -> datetime:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now + timedelta(hours=hours)


def _lease(
    portal: Portal, name: str, start: datetime, hours: int, items: list[dict[str, Any]]
) -> dict[str, Any]:
    body = {"name": name, "start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat()}
    r = portal.api("POST", "/v1/leases", json={**body, "items": items})
    assert r.status_code == 201, r.text
    lease: dict[str, Any] = r.json()
    return lease


def _rows(page: Page, within: str = "main") -> list[str]:
    rows: list[str] = page.locator(f"{within} table.heat tbody tr").evaluate_all(
        "rs => rs.map(r => r.dataset.row)"
    )
    return rows


def _cells(page: Page, row: str, within: str = "main") -> list[dict[str, Any]]:
    cells: list[dict[str, Any]] = page.locator(
        f'{within} table.heat tr[data-row="{row}"] td.cell'
    ).evaluate_all(
        "cs => cs.map(c => ({start: c.dataset.start, capacity: Number(c.dataset.capacity),"
        " used: Number(c.dataset.used), marks: c.dataset.marks.split(' ')}))"
    )
    return cells


def test_calendar_rows_for_facility_ports_and_a_sites_links_and_ports(page: Page, portal: Portal) -> None:
    ports = portal.api("GET", "/v1/facility-ports").json()
    port = ports[0]
    port_row = f"{port['site']}/{port['name']}"
    tag = int(re.split(r"[-,]", port["vlans"])[0])
    start = _next_hour()
    lease = _lease(
        portal,
        "vlan on the calendar",
        start,
        2,
        [{"provider_uuid": port["uuid"], "resource_class": "VLAN", "amount": 1, "vlan_tag": tag}],
    )
    sign_in(page, portal)
    today = page.evaluate("new Date().toLocaleDateString('en-CA')")
    page.goto(f"{portal.url}/#/calendar?resolution=hour&class=VLAN&from={today}")
    page.wait_for_selector("main[data-ready=calendar] table.heat")
    assert page.get_by_label("Resource class").input_value() == "VLAN"
    # one row per facility port, VLAN tags as capacity, the server's numbers in each cell
    assert _rows(page) == sorted(f"{p['site']}/{p['name']}" for p in ports)
    assert "facility port" in page.locator("table.heat caption").inner_text()
    cells = _cells(page, port_row)
    assert {c["capacity"] for c in cells} == {port["vlan_count"]}
    first = datetime.fromisoformat(cells[0]["start"])
    cal = portal.api(
        "GET",
        "/v1/calendar",
        params={
            "start": first.isoformat(),
            "end": (first + timedelta(hours=len(cells))).isoformat(),
            "resolution": "hour",
            "kind": "facility_port",
            "name": port_row,
            "resource_class": "VLAN",
        },
    ).json()
    assert [c["used"] for c in cells] == cal["rows"][0]["used"]
    booked = [c for c in cells if lease["id"] in c["marks"]]  # your lease outlined on the port's row
    assert [datetime.fromisoformat(c["start"]) for c in booked] == [start, start + timedelta(hours=1)]
    assert all(c["used"] >= 1 for c in booked)
    shot(page, "calendar-ports")

    # the port's site: its hosts, links and ports over the same hours, beside each other
    page.get_by_label("Resource class").select_option("VCPU")
    page.get_by_role("button", name=port["site"], exact=True).click()
    panel = "section.site-panel .site-over-time"
    page.wait_for_selector(f"{panel} table.heat")
    found = portal.api("GET", "/v1/providers", params={"kind": "site", "name": port["site"]}).json()
    site = found["items"][0]
    hosts = portal.api("GET", "/v1/providers", params={"kind": "host", "limit": 1000}).json()["items"]
    links = [x for x in portal.api("GET", "/v1/links").json() if port["site"] in x["endpoints"]]
    expected = (
        [
            f"host:{x['name']}:VCPU"
            for x in sorted(hosts, key=lambda x: x["name"])
            if x["parent_uuid"] == site["uuid"]
        ]
        + [f"link:{x['name']}:BANDWIDTH_GBPS" for x in sorted(links, key=lambda x: x["name"])]
        + [
            f"facility_port:{p['site']}/{p['name']}:{cls}"
            for p in sorted(ports, key=lambda p: p["name"])
            if p["site"] == port["site"]
            for cls in ("VLAN", "BANDWIDTH_GBPS")
        ]
    )
    assert _rows(page, panel) == expected
    assert any(r.startswith("host:") for r in expected)
    assert any(r.startswith("link:") for r in expected)
    marked = [c for c in _cells(page, f"facility_port:{port_row}:VLAN", panel) if lease["id"] in c["marks"]]
    assert len(marked) == 2
    bandwidth = _cells(page, f"facility_port:{port_row}:BANDWIDTH_GBPS", panel)
    assert all(lease["id"] not in c["marks"] for c in bandwidth)  # the lease holds a tag, not Gbps
    label = page.locator(f'{panel} tr[data-row="facility_port:{port_row}:VLAN"] th').inner_text()
    assert label == f"port {port_row} (VLANs)"
    shot(page, "calendar-site-panel")


def _find(page: Page) -> dict[str, Any]:
    with page.expect_response(lambda r: r.url.endswith("/v1/find-slot")) as response:
        page.get_by_role("button", name="Find windows").click()
    page.wait_for_selector("form.find [type=submit]:not([aria-busy])")  # the answer is on the page
    answer: dict[str, Any] = response.value.json()
    return answer


def _shown_sites(page: Page) -> list[dict[str, str]]:
    shown: list[dict[str, str]] = page.locator("li.window").evaluate_all(
        "ws => ws.map(w => Object.fromEntries([...w.querySelectorAll('tbody tr')]"
        ".map(r => [r.cells[0].textContent, r.cells[1].textContent])))"
    )
    return shown


def test_find_with_a_facility_port_a_link_and_site_rules(page: Page, portal: Portal) -> None:
    port = portal.api("GET", "/v1/facility-ports").json()[0]
    sign_in(page, portal)
    page.goto(portal.url + "/#/find")
    page.wait_for_selector("main[data-ready=find]")
    gpu, workers = page.locator("fieldset.component").all()
    assert gpu.get_by_label("GPUs each").is_enabled()
    gpu.get_by_label("GPU model").select_option("")
    assert gpu.get_by_label("GPUs each").is_disabled()  # a count without a model means nothing
    assert workers.get_by_label("GPUs each").is_disabled()
    for c in (gpu, workers):
        c.get_by_label("Count").fill("1")
        c.get_by_label("Cores").fill("2")
        c.get_by_label("Memory (GB)").fill("4")
    page.get_by_label("Duration (hours)").fill("2")
    page.get_by_role("button", name="Add facility port").click()
    fp = page.locator("fieldset.port")
    assert fp.locator("legend").inner_text() == "Facility port 1"
    fp.get_by_label("Port", exact=True).select_option(f"{port['site']}/{port['name']}")
    fp.get_by_label("Attached to").select_option("gpu")
    fp.get_by_label("VLANs").fill("2")
    link = page.locator("fieldset.link")

    # each component at a different site: the link is routed between sites, the port gives two VLANs
    page.get_by_label("Sites", exact=True).select_option("different_sites")
    with page.expect_request(lambda r: r.url.endswith("/v1/find-slot")) as sent:
        answer = _find(page)
    body = sent.value.post_data_json
    assert body is not None
    assert body["groups"] == [{"kind": "different_sites", "components": ["gpu", "workers"]}]
    assert body["links"] == [{"a": "gpu", "b": "workers", "bandwidth_gbps": 10}]
    assert body["facility_ports"] == [
        {"site": port["site"], "port": port["name"], "component": "gpu", "vlan_count": 2}
    ]
    assert answer["windows"]
    shown = _shown_sites(page)
    assert shown == [w["sites"] for w in answer["windows"]]
    assert all(s["gpu"] != s["workers"] for s in shown)
    routes = page.locator("li.window").first.locator(".routes").inner_text()
    w = answer["windows"][0]
    assert len(w["ports"][0]["vlans"]) == 2
    vlans = ", ".join(str(v) for v in w["ports"][0]["vlans"])
    assert f"gpu → port {port['name']} at {port['site']}: VLAN {vlans}" in routes
    assert "gpu ↔ workers: " in routes
    assert "same site" not in routes
    shot(page, "find-port-link-different-sites")

    # all at one site: the link needs no network link
    page.get_by_label("Sites", exact=True).select_option("same_site")
    answer = _find(page)
    assert answer["windows"]
    shown = _shown_sites(page)
    assert shown == [w["sites"] for w in answer["windows"]]
    assert all(s["gpu"] == s["workers"] for s in shown)
    assert "gpu ↔ workers: same site" in page.locator("li.window").first.locator(".routes").inner_text()

    # renaming a component renames it in the link's and the port's choosers
    workers.get_by_label("Name").fill("w2")
    assert link.get_by_label("To component").input_value() == "w2"
    workers.get_by_label("Name").fill("workers")
    assert link.get_by_label("To component").input_value() == "workers"

    # the API's problems beside the port's, then the link's fields, in the API's words
    fp.get_by_label("VLANs").fill("0")
    _find(page)
    error = field_of(page, "VLANs", fp).locator(".field-error")
    error.wait_for()
    assert "vlan_count" in error.inner_text()
    assert fp.get_by_label("VLANs").get_attribute("aria-invalid") == "true"
    assert page.locator(".field-error").count() == 1
    fp.get_by_label("VLANs").fill("2")
    link.get_by_label("Bandwidth (Gbps)").fill("0")
    answer = _find(page)
    assert answer["errors"][0]["pointer"] == "/links/0/bandwidth_gbps"
    error = field_of(page, "Bandwidth (Gbps)", link).locator(".field-error")
    error.wait_for()
    assert error.inner_text() == answer["errors"][0]["detail"]
    assert page.locator(".field-error").count() == 1
    shot(page, "find-link-error")
    link.get_by_label("Bandwidth (Gbps)").fill("10")
    link.get_by_label("To component").select_option("gpu")  # a link from a component to itself
    answer = _find(page)
    assert answer["errors"][0]["pointer"] == "/links/0/b"
    error = field_of(page, "To component", link).locator(".field-error")
    error.wait_for()  # beside the end the API names
    assert error.inner_text() == answer["errors"][0]["detail"]
    assert page.locator(".field-error").count() == 1


def _host_at(portal: Portal, site_index: int) -> dict[str, Any]:
    sites = portal.api("GET", "/v1/providers", params={"kind": "site", "limit": 1000}).json()["items"]
    hosts = portal.api("GET", "/v1/providers", params={"kind": "host", "limit": 1000}).json()["items"]
    with_hosts = [
        s for s in sorted(sites, key=lambda s: s["name"]) if any(h["parent_uuid"] == s["uuid"] for h in hosts)
    ]
    site = with_hosts[site_index]
    host = next(h for h in hosts if h["parent_uuid"] == site["uuid"])
    return {**host, "site": site["name"]}


def _wait_rows(page: Page, ids: list[str]) -> None:
    page.wait_for_function(
        "ids => JSON.stringify([...document.querySelectorAll('table.leases tbody tr')]"
        ".map(r => r.dataset.lease)) === JSON.stringify(ids)",
        arg=ids,
    )


def test_leases_filters_live_in_the_url(page: Page, portal: Portal) -> None:
    a, b = _host_at(portal, 0), _host_at(portal, 1)
    later = _next_hour(20 * 24)  # past the demo's bookings: every host is free
    core = {"resource_class": "VCPU", "amount": 1}
    alpha1 = _lease(portal, "flt-alpha-1", later, 2, [{"provider_uuid": a["uuid"], **core}])["id"]
    beta = _lease(portal, "flt-beta", later, 2, [{"provider_uuid": b["uuid"], **core}])["id"]
    alpha2 = _lease(
        portal, "flt-alpha-2", later + timedelta(days=5), 2, [{"provider_uuid": b["uuid"], **core}]
    )["id"]
    sign_in(page, portal)
    page.goto(portal.url + "/#/leases")
    page.wait_for_selector("main[data-ready=leases] table.leases")
    assert page.locator("table.leases thead th").all_inner_texts()[:2] == ["Lease", "Status"]

    page.get_by_label("Name or id starts with").fill("FLT-alpha")  # case does not matter
    page.get_by_label("Name or id starts with").press("Enter")
    _wait_rows(page, [alpha2, alpha1])
    assert "name=FLT-alpha" in page.url
    page.get_by_label("Site", exact=True).select_option(b["site"])
    _wait_rows(page, [alpha2])
    assert page.locator(f'tr[data-lease="{alpha2}"] td').nth(3).inner_text() == b["site"]
    page.get_by_label("Site", exact=True).select_option("")
    day = page.evaluate("t => new Date(t).toLocaleDateString('en-CA')", later.isoformat())
    page.get_by_label("To", exact=True).fill(day)
    page.get_by_label("To", exact=True).dispatch_event("change")
    _wait_rows(page, [alpha1])
    shared = page.url
    assert f"to={day}" in shared
    assert "site=" not in shared
    shot(page, "leases-filtered")
    page.set_viewport_size({"width": 820, "height": 1180})  # a tablet: the filters wrap, nothing overflows
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    page.set_viewport_size({"width": 1366, "height": 900})

    # the shared address opens the same view: fields filled in, same rows
    page.goto(portal.url + "/#/calendar")
    page.wait_for_selector("main[data-ready=calendar]")
    page.goto(shared)
    page.reload()
    page.wait_for_selector("main[data-ready=leases]")
    _wait_rows(page, [alpha1])
    assert page.get_by_label("Name or id starts with").input_value() == "FLT-alpha"
    assert page.get_by_label("To", exact=True).input_value() == day

    # another filtered address on the same page (a pasted link) shows its own view
    page.goto(portal.url + "/#/leases?name=flt-beta")
    _wait_rows(page, [beta])
    assert page.get_by_label("Name or id starts with").input_value() == "flt-beta"

    # two changes in a row: only the newer filter's rows, none of the older load's mixed in
    page.evaluate(
        """([site, day]) => {
          const form = document.querySelector('form.filters');
          form.elements.name.value = 'flt-';
          form.elements.site.value = site;
          form.elements.site.dispatchEvent(new Event('change'));
          form.elements.to.value = day;
          form.elements.to.dispatchEvent(new Event('change'));
        }""",
        [b["site"], day],
    )
    _wait_rows(page, [beta])  # flt- at b's site starting by that day; alpha-2 (later) only in the older
    page.wait_for_timeout(500)
    _wait_rows(page, [beta])

    page.goto(shared)
    _wait_rows(page, [alpha1])
    # a range that ends before it starts: said beside To, nothing asked of the server
    page.get_by_label("From", exact=True).fill((later + timedelta(days=1)).strftime("%Y-%m-%d"))
    page.get_by_label("From", exact=True).dispatch_event("change")
    error = field_of(page, "To").locator(".field-error")
    error.wait_for()
    assert "before" in error.inner_text()

    # status and name together; Clear filters shows everything current again
    assert portal.api("POST", f"/v1/leases/{alpha1}/cancel").status_code == 200
    page.get_by_label("From", exact=True).fill("")
    page.get_by_label("To", exact=True).fill("")
    page.get_by_label("Status").select_option("CANCELLED")
    _wait_rows(page, [alpha1])
    assert "status=CANCELLED" in page.url
    page.get_by_role("link", name="Clear filters").click()
    page.wait_for_selector(f'main[data-ready=leases] tr[data-lease="{beta}"]')
    assert page.get_by_label("Name or id starts with").input_value() == ""
    assert alpha1 not in page.locator("table.leases tbody tr").evaluate_all(
        "rs => rs.map(r => r.dataset.lease)"
    )
