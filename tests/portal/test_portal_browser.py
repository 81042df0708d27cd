"""The web portal in a real (headless) Chromium against a live server with the demo testbed: sign in, the
calendar, Find Available Window -> offers -> accept -> the lease on the calendar -> extend -> cancel,
a job's state changing live, API errors beside their fields, the topology import, and no request to
another origin (the ``page`` fixture fails a test that sends one)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .conftest import PROJECT, Portal, field_of, shot, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import FilePayload, Page

pytestmark = pytest.mark.browser


def payload(name: str, content: bytes) -> FilePayload:
    return {"name": name, "mimeType": "application/json", "buffer": content}


def site_names(portal: Portal) -> list[str]:
    r = portal.api("GET", "/v1/providers", params={"kind": "site", "limit": 1000})
    return sorted(p["name"] for p in r.json()["items"])


def test_sign_in_calendar_and_sign_out(page: Page, portal: Portal) -> None:
    page.goto(portal.url + "/")
    page.get_by_label("API token").wait_for()
    shot(page, "sign-in")
    # a wrong token: the API's 401 in words beside the token field, and nothing stored
    page.get_by_label("API token").fill("sb_not-a-token")
    page.get_by_role("button", name="Sign in").click()
    error = field_of(page, "API token").locator(".field-error")
    error.wait_for()
    assert "token" in error.inner_text().lower()
    assert page.evaluate("sessionStorage.length") == 0
    # keyboard only: type the token and press Enter
    page.get_by_label("API token").fill(portal.token)
    page.keyboard.press("Enter")
    page.wait_for_selector("main[data-ready=calendar]")
    assert page.locator("#who-label").inner_text() == f"{PROJECT} (user)"

    rows = page.locator("table.heat tbody tr").evaluate_all("rows => rows.map(r => r.dataset.row)")
    assert rows == site_names(portal)
    assert len(rows) >= 30  # the FABRIC-like demo's sites
    # every column label lies inside its header cell: none spills over the caption above the grid
    spilled = page.evaluate(
        """() => [...document.querySelectorAll('table.heat thead th:not(.corner)')].filter(th => {
            const text = document.createRange();
            text.selectNodeContents(th);
            const t = text.getBoundingClientRect(), box = th.getBoundingClientRect();
            return t.top < box.top - 1 || t.bottom > box.bottom + 1;
        }).map(th => th.textContent)"""
    )
    assert spilled == []
    # every cell carries capacity / peak used / free from /v1/calendar, and hovering shows them
    cell = page.locator("table.heat td.cell").first
    cap, used, free = (int(cell.get_attribute(f"data-{k}") or "-1") for k in ("capacity", "used", "free"))
    assert cap >= 0
    assert 0 <= used <= cap
    assert free == cap - used
    cell.hover()
    assert page.locator("#tip").is_visible()
    assert f"capacity {cap}, peak used {used}, free {free}" in page.locator("#tip").inner_text()
    # arrow keys move through the grid
    cell.focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.cellIndex") == 2
    # another class and resolution: the rows follow (links for bandwidth)
    page.get_by_label("Resource class").select_option("BANDWIDTH_GBPS")
    links = page.locator("table.heat tbody tr").evaluate_all("rows => rows.map(r => r.dataset.row)")
    assert sorted(links) == sorted(x["name"] for x in portal.api("GET", "/v1/links").json())
    page.get_by_label("Resource class").select_option("VCPU")
    page.get_by_label("Resolution").select_option("hour")
    page.wait_for_function("() => document.querySelectorAll('table.heat thead th').length === 49")
    # a site's hosts, links and ports
    site = rows[0]
    page.get_by_role("button", name=site, exact=True).click()
    panel = page.locator(".site-panel")
    panel.get_by_role("heading", name=f"Site {site}").wait_for()
    hosts = portal.api("GET", "/v1/providers", params={"kind": "host", "limit": 1000}).json()["items"]
    site_uuid = next(
        p["uuid"]
        for p in portal.api("GET", "/v1/providers", params={"kind": "site", "name": site}).json()["items"]
    )
    mine = sorted(h["name"] for h in hosts if h["parent_uuid"] == site_uuid)
    shown = panel.locator("table.hosts tbody tr td:first-child").all_inner_texts()
    assert shown == mine
    assert mine
    shot(page, "calendar")

    # tablet width: the page itself does not scroll sideways (the heat map scrolls in its box)
    page.set_viewport_size({"width": 820, "height": 1180})
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    shot(page, "calendar-tablet")

    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API token").wait_for()
    assert page.evaluate("sessionStorage.length") == 0


def calendar_cells(page: Page, site: str) -> list[dict[str, Any]]:
    cells: list[dict[str, Any]] = page.locator(f'table.heat tr[data-row="{site}"] td.cell').evaluate_all(
        "cs => cs.map(c => ({start: c.dataset.start, free: Number(c.dataset.free), marks: c.dataset.marks}))"
    )
    return cells


def test_find_offer_accept_extend_cancel(page: Page, portal: Portal) -> None:
    sign_in(page, portal)
    page.get_by_role("link", name="Find Available Window").click()
    page.wait_for_selector("main[data-ready=find]")
    gpu, workers = page.locator("fieldset.component").all()
    gpu.get_by_label("Name").fill("gpu")
    gpu.get_by_label("GPU model").select_option("GPU_A30")
    workers.get_by_label("Name").fill("workers")
    workers.get_by_label("Count").fill("2")
    link = page.locator("fieldset.link")
    assert link.get_by_label("From component").input_value() == "gpu"
    assert link.get_by_label("To component").input_value() == "workers"
    link.get_by_label("Bandwidth (Gbps)").fill("10")
    page.get_by_label("Duration (hours)").fill("4")
    # past the demo's bookings, so the hour after the lease is free to extend into
    start = datetime.fromisoformat(page.get_by_label("Earliest start").input_value()) + timedelta(days=9)
    page.get_by_label("Earliest start").fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Latest end").fill((start + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Find windows").click()
    page.locator("li.window").first.wait_for()
    page.locator(".window-map td.win").first.wait_for()  # the windows drawn on the calendar
    first = page.locator("li.window").first
    placement = dict(
        first.locator("tbody tr").evaluate_all(
            "rs => rs.map(r => [r.cells[0].textContent, r.cells[2].textContent])"
        )
    )
    assert set(placement) == {"gpu", "workers"}
    assert len(placement["workers"].split(", ")) == 2
    gpu_host = placement["gpu"]
    inv = portal.api("GET", "/v1/providers", params={"kind": "host", "name": gpu_host}).json()["items"][0]
    assert inv["inventories"]["GPU_A30"]["capacity"] >= 1  # the GPU component sits on an A30 host
    assert "gpu ↔ workers" in first.locator(".routes").inner_text()
    shot(page, "find-window")

    page.get_by_role("button", name="Get offers").click()
    offer = page.locator("article.offer").first
    offer.wait_for()
    clock = offer.locator(".countdown")
    before = clock.inner_text()
    assert re.fullmatch(r"expires in \d+:\d\d", before)
    page.wait_for_function(
        "t => document.querySelector('article.offer .countdown').textContent !== t", arg=before
    )
    shot(page, "offers")
    offer.get_by_role("button", name="Accept offer 1").click()
    accepted = page.locator(".accepted[data-lease]")
    accepted.wait_for()
    lease_id = accepted.get_attribute("data-lease")
    assert lease_id
    lease = portal.api("GET", f"/v1/leases/{lease_id}").json()
    assert lease["status"] in ("PENDING", "ACTIVE")
    assert lease["project"] == PROJECT
    hours = (lease["end_s"] - lease["start_s"]) // 3600
    gpu_site = next(
        p["name"]
        for p in portal.api("GET", "/v1/providers", params={"kind": "site", "limit": 1000}).json()["items"]
        if p["uuid"] == inv["parent_uuid"]
    )
    vcpu_at_site = sum(
        i["amount"]
        for i in lease["items"]
        if i["resource_class"] == "VCPU" and i["provider_name"] == gpu_host
    )

    # the lease on the calendar: marked on the GPU's site for each of its hours
    accepted.get_by_role("link", name="See it on the calendar").click()
    page.wait_for_selector("main[data-ready=calendar]")
    booked = [c for c in calendar_cells(page, gpu_site) if lease_id in c["marks"].split()]
    assert len(booked) == hours
    shot(page, "calendar-with-lease")

    # extend by an hour, within what the page says is free
    page.goto(f"{portal.url}/#/leases/{lease_id}")
    page.wait_for_selector("main[data-ready=leases]")
    page.wait_for_selector("#extend-limit[data-limit]")
    new_end = datetime.fromtimestamp(lease["end_s"], UTC) + timedelta(hours=1)
    limit = datetime.fromisoformat(page.locator("#extend-limit").get_attribute("data-limit") or "")
    assert limit >= new_end  # nothing booked after it
    local_end = page.evaluate(  # the datetime-local value: wall-clock time in the browser's zone
        "t => { const d = new Date(t); d.setMinutes(d.getMinutes() - d.getTimezoneOffset());"
        " return d.toISOString().slice(0, 16); }",
        new_end.isoformat(),
    )
    page.get_by_label("New end").fill(local_end)
    page.get_by_role("button", name="Extend lease").click()
    page.get_by_text("Extended.").wait_for()
    assert portal.api("GET", f"/v1/leases/{lease_id}").json()["end_s"] == lease["end_s"] + 3600
    with page.expect_download() as download:
        page.get_by_role("button", name="This lease as .ics").click()
    ics = Path(download.value.path()).read_text()
    assert f"UID:{lease_id}@slotbroker" in ics
    assert ics.count("BEGIN:VEVENT") == 1
    shot(page, "lease")

    # cancel (asks first) frees the calendar: no mark, and the site's free cores back up
    page.get_by_role("button", name="Cancel lease").click()
    page.get_by_role("button", name="Yes, cancel it").click()
    page.get_by_text("Cancelled: its capacity is free again.").wait_for()
    assert page.locator("#lease-status").inner_text() == "CANCELLED"
    page.go_back()  # the calendar, as it was before
    page.wait_for_selector("main[data-ready=calendar]")
    after = {c["start"]: c for c in calendar_cells(page, gpu_site)}
    assert all(lease_id not in c["marks"].split() for c in after.values())
    for cell in booked:
        assert after[cell["start"]]["free"] == cell["free"] + vcpu_at_site


def test_a_pending_lease_starts_earlier(page: Page, portal: Portal) -> None:
    """A lease booked days ahead, moved by the lease page's "Start earlier" to the earliest time it fits
    (the API's compaction)."""
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(days=9)
    request = {
        "components": [{"name": "one", "resources": {"VCPU": 1}}],
        "earliest_start": ahead.isoformat(),
        "latest_end": (ahead + timedelta(days=1)).isoformat(),
        "duration": 3600,
    }
    offers = portal.api("POST", "/v1/offer-sets", json={"request": request, "max_offers": 1}).json()
    lease_id = portal.api("POST", f"/v1/offers/{offers['offers'][0]['id']}/accept").json()["uuid"]
    before = portal.api("GET", f"/v1/leases/{lease_id}").json()
    assert before["status"] == "PENDING"
    sign_in(page, portal)
    page.goto(f"{portal.url}/#/leases/{lease_id}")
    page.wait_for_selector("main[data-ready=leases]")
    page.get_by_role("button", name="Start as early as possible").click()
    page.get_by_text("Moved: it now starts").wait_for()
    after = portal.api("GET", f"/v1/leases/{lease_id}").json()
    assert after["start_s"] < before["start_s"] - 86_400  # days earlier: one core is free long before
    assert after["end_s"] - after["start_s"] == 3600
    shot(page, "lease-started-earlier")
    assert portal.api("POST", f"/v1/leases/{lease_id}/cancel").status_code == 200


def test_api_errors_appear_beside_their_fields(page: Page, portal: Portal) -> None:
    sign_in(page, portal)
    page.goto(portal.url + "/#/find")
    page.wait_for_selector("main[data-ready=find]")
    page.set_viewport_size({"width": 820, "height": 1180})  # a tablet: the form wraps, nothing overflows
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    shot(page, "find-tablet")
    page.set_viewport_size({"width": 1366, "height": 900})
    start = datetime.fromisoformat(page.get_by_label("Earliest start").input_value())
    page.get_by_label("Latest end").fill((start - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Find windows").click()
    message = field_of(page, "Latest end").locator(".field-error")
    message.wait_for()
    assert "end" in message.inner_text()
    assert page.get_by_label("Latest end").get_attribute("aria-invalid") == "true"
    assert page.locator(".field-error").count() == 1  # only where the API pointed
    shot(page, "find-error")

    # a pointer into the second component: /components/1/count -> that component's Count field
    page.goto(portal.url + "/#/calendar")
    page.wait_for_selector("main[data-ready=calendar]")
    page.goto(portal.url + "/#/find")
    page.wait_for_selector("main[data-ready=find]")
    workers = page.locator("fieldset.component").nth(1)
    workers.get_by_label("Count").fill("0")
    page.get_by_role("button", name="Find windows").click()
    deep = field_of(page, "Count", workers).locator(".field-error")
    deep.wait_for()
    body = {
        "components": [
            {"name": "a", "resources": {"VCPU": 1}},
            {"name": "w", "count": 0, "resources": {"VCPU": 1}},
        ],
        "earliest_start": datetime.now(UTC).isoformat(),
        "latest_end": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        "duration": 3600,
    }
    problem = portal.api("POST", "/v1/find-slot", json=body).json()
    assert problem["errors"][0]["pointer"] == "/components/1/count"
    assert deep.inner_text() == problem["errors"][0]["detail"]  # the API's own words
    assert page.locator(".field-error").count() == 1

    # nothing fits: the explanation in words, as the API gave it
    workers.get_by_label("Count").fill("1")
    workers.get_by_label("Cores").fill("100000")
    with page.expect_response(lambda r: r.url.endswith("/v1/find-slot")) as response:
        page.get_by_role("button", name="Find windows").click()
    answer = response.value.json()
    explanation = page.locator(".results .explanation")
    explanation.wait_for()
    assert page.locator(".field-error").count() == 0
    assert answer["windows"] == []
    reasons = [b["detail"] for b in answer["explanation"]["blockers"]]
    assert reasons
    text = explanation.inner_text()
    assert "Nothing fits" in text
    for reason in reasons:
        assert reason in text
    shot(page, "find-nothing-fits")


def _lease_now(portal: Portal) -> str:
    """A one-hour lease of one core starting now, on the first host with one free."""
    hosts = portal.api("GET", "/v1/providers", params={"kind": "host", "limit": 1000}).json()["items"]
    now = datetime.now(UTC)
    for host in hosts:
        r = portal.api(
            "POST",
            "/v1/leases",
            json={
                "name": "job lease",
                "start": now.isoformat(),
                "end": (now + timedelta(hours=1)).isoformat(),
                "items": [{"provider_uuid": host["uuid"], "resource_class": "VCPU", "amount": 1}],
            },
        )
        if r.status_code == 201:
            lease_id: str = r.json()["id"]
            return lease_id
    raise AssertionError("no demo host has a free core now")


def test_job_state_moves_live(page: Page, portal: Portal) -> None:
    sign_in(page, portal)
    lease_id = _lease_now(portal)
    job = {"id": "portal-live", "name": "live", "lease_id": lease_id, "provisioner": "simulated"}
    created = portal.api("POST", "/v1/jobs", json=job)
    assert created.status_code == 201, created.text
    page.goto(f"{portal.url}/#/jobs/portal-live")
    page.wait_for_selector("main[data-ready=jobs]")
    # record every state the page shows, without reloading it
    page.evaluate(
        """() => {
          window.__seen = [document.querySelector('#job-state [data-state]').dataset.state];
          new MutationObserver(() => window.__seen.push(
            document.querySelector('#job-state [data-state]').dataset.state))
            .observe(document.querySelector('#job-state'), {childList: true});
        }"""
    )
    page.wait_for_selector("#job-state [data-state=succeeded]", timeout=60_000)
    seen: list[str] = page.evaluate("window.__seen")
    assert seen[0] in ("pending", "provisioning"), seen  # not finished when the page opened
    assert seen[-1] == "succeeded"
    assert "running" in seen, seen  # a state only a live update could have shown
    assert "hi" in page.locator("pre.logs").inner_text()
    named = page.get_by_role("link", name="job lease")  # the lease by its name, its id as the title
    named.wait_for()
    assert named.get_attribute("title") == lease_id
    shot(page, "job")
    page.get_by_role("link", name="Jobs").click()
    page.wait_for_selector("main[data-ready=jobs]")
    row = page.locator('tr[data-job="portal-live"] .state')
    assert row.inner_text() == "succeeded"
    lease = page.locator('tr[data-job="portal-live"] td.lease a')
    page.wait_for_function(  # the lease's name replaces its id's prefix once read
        "() => document.querySelector('tr[data-job=\"portal-live\"] td.lease a').textContent === 'job lease'"
    )
    assert lease.get_attribute("href") == f"#/leases/{lease_id}"
    assert lease.get_attribute("title") == lease_id
    shot(page, "jobs")

    # cancel from the page: the stream brings the final state
    job = {"id": "portal-cancel", "lease_id": lease_id, "provisioner": "slow"}
    assert portal.api("POST", "/v1/jobs", json=job).status_code == 201
    page.goto(f"{portal.url}/#/jobs/portal-cancel")
    page.wait_for_selector("main[data-ready=jobs]")
    page.get_by_role("button", name="Cancel job").click()
    page.get_by_text("Cancel requested.").wait_for()
    page.wait_for_selector("#job-state [data-state=canceled]", timeout=60_000)
    assert portal.api("GET", "/v1/jobs/portal-cancel").json()["state"] == "canceled"


def test_leases_list_and_inventory_import_with_progress(page: Page, portal: Portal) -> None:
    _lease_now(portal)
    sign_in(page, portal)
    page.get_by_role("link", name="Leases").click()
    page.wait_for_selector("main[data-ready=leases]")
    shown = page.locator("table.leases tbody tr").evaluate_all("rs => rs.map(r => r.dataset.lease)")
    listed = portal.api("GET", "/v1/leases", params={"status": ["PENDING", "ACTIVE"], "limit": 50}).json()
    assert shown == [x["id"] for x in listed["items"]]  # newest first, the caller's project only
    assert shown
    with page.expect_download() as download:
        page.get_by_role("button", name="Download .ics").click()
    ics = Path(download.value.path()).read_text()
    assert download.value.suggested_filename == "leases.ics"
    assert ics.startswith("BEGIN:VCALENDAR")
    assert all(lease_id in ics for lease_id in shown)
    shot(page, "leases")

    page.get_by_role("link", name="Inventory").click()
    page.wait_for_selector("main[data-ready=inventory]")
    assert page.get_by_label("Topology document (JSON or YAML)").count() == 0  # users may not import
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, portal, portal.admin)
    page.get_by_role("link", name="Inventory").click()
    page.wait_for_selector("main[data-ready=inventory]")
    assert page.locator("h3", has_text="Sites (").inner_text() == f"Sites ({len(site_names(portal))})"
    # capacity in words, cores, memory and disk first (the hosts' sums from the API)
    first = site_names(portal)[0]
    site = portal.api("GET", "/v1/providers", params={"kind": "site", "name": first}).json()["items"][0]
    hosts = portal.api("GET", "/v1/providers", params={"parent": site["uuid"], "limit": 1000}).json()["items"]
    total = {
        c: sum(h["inventories"].get(c, {}).get("capacity", 0) for h in hosts) for c in ("VCPU", "MEMORY_MB")
    }
    row = page.locator("tr", has=page.get_by_role("cell", name=first, exact=True)).first
    capacity = row.locator("td").nth(2).inner_text()
    assert capacity.startswith(f"{total['VCPU']:,} cores, {total['MEMORY_MB'] // 1024:,} GB memory"), capacity
    assert "MEMORY_MB" not in capacity
    assert "VCPU" not in capacity
    # re-import the exported topology: progress, then the report (nothing changes)
    doc = portal.api("GET", "/v1/topology").json()
    page.get_by_label("Topology document (JSON or YAML)").set_input_files(
        files=[payload("topology.json", json.dumps(doc).encode())]
    )
    page.get_by_role("button", name="Import").click()
    report = page.get_by_text(re.compile(r"^Imported: 0 created, 0 updated, \d+ unchanged, 0 deleted\.$"))
    report.wait_for()
    assert page.locator("progress").get_attribute("value") == "1"
    shot(page, "inventory")
    # a broken document: the API's problem in words beside the file field
    page.get_by_label("Topology document (JSON or YAML)").set_input_files(
        files=[payload("bad.json", b'{"regions": 5}')]
    )
    page.get_by_role("button", name="Import").click()
    field_of(page, "Topology document (JSON or YAML)").locator(".field-error").wait_for()
