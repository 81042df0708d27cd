// Calendar: free capacity per site (or link) over time, at hour/day/week, for one resource class, with
// the caller's leases overlaid. Times are shown in the browser's zone; buckets start at local midnight
// (day/week) or the current hour.

import { all, get } from "./api.js";
import { field, h, iso, select, startOfDay, startOfHour, status, when, zone } from "./dom.js";
import { classLabel, heatmap, legend } from "./heatmap.js";
import { inventory, rowOf, whoAmI } from "./inventory-cache.js";
import { pointers, showProblem } from "./problems.js";

const SPAN = { hour: 48, day: 28, week: 12 };
const BUCKET = { hour: 3600e3, day: 86400e3, week: 7 * 86400e3 };

export function rangeFor(resolution, from) {
  const start = resolution === "hour" ? startOfHour(from) : startOfDay(from);
  return [start, new Date(start.getTime() + SPAN[resolution] * BUCKET[resolution])];
}

// Rows of /v1/calendar for sites and links over [start, end).
export function fetchCalendar(start, end, resolution, signal) {
  return get("/v1/calendar", { start: iso(start), end: iso(end), resolution, kind: ["site", "link"] }, { signal });
}

export function rowsFor(cal, cls) {
  const kind = cls === "BANDWIDTH_GBPS" ? "link" : "site";
  return cal.rows.filter((r) => r.kind === kind && r.resource_class === cls).sort((a, b) => a.name.localeCompare(b.name));
}

// Your leases over the range, as marks per calendar row.
async function leaseMarks(inv, start, end, signal) {
  const who = await whoAmI();
  const leases = await all("/v1/leases", {
    status: ["PENDING", "ACTIVE"], start: iso(start), end: iso(end), project: who.project,
  });
  const marks = new Map();
  for (const lease of leases) {
    if (signal.aborted) break;
    const amounts = new Map();
    for (const item of lease.items) {
      const row = rowOf(inv, item.provider_name);
      const list = amounts.get(row) || [];
      list.push(`${item.resource_class} ${item.amount}`);
      amounts.set(row, list);
    }
    for (const [row, list] of amounts) {
      const label = `your lease ${lease.name || lease.id.slice(0, 8)} (${lease.status}): ${list.join(", ")}`;
      const m = marks.get(row) || [];
      m.push({ start: Date.parse(lease.start), end: Date.parse(lease.end), kind: "mine", label, id: lease.id });
      marks.set(row, m);
    }
  }
  return { marks, count: leases.length };
}

export async function calendarPage(main, signal, params) {
  const state = {
    resolution: params.get("resolution") || "day",
    cls: params.get("class") || "VCPU",
    from: params.get("from") ? new Date(params.get("from")) : new Date(),
  };
  const inv = await inventory();
  const resolution = select([["hour", "hour"], ["day", "day"], ["week", "week"]], state.resolution,
    { name: "resolution", dataset: { pointer: "#/query/resolution" } });
  const classes = [...inv.classes, "BANDWIDTH_GBPS"];
  const cls = select(classes.map((c) => [c, classLabel(c)]), state.cls, { name: "class", dataset: { pointer: "#/query/resource_class" } });
  const from = h("input", { type: "date", name: "from", value: startOfDay(state.from).toLocaleDateString("en-CA"), dataset: { pointer: "#/query/start" } });
  const form = h("form", { class: "controls", "aria-label": "Calendar options" },
    field("Resolution", resolution), field("Resource class", cls), field("From", from),
    h("p", { class: "hint" }, `Times in your zone, ${zone}.`));
  const grid = h("div", { class: "grid-area", "aria-live": "polite" });
  const panel = h("section", { class: "site-panel", hidden: true, "aria-label": "Site details", tabindex: "-1" });
  main.replaceChildren(h("h2", {}, "Calendar"), form, legend(), grid, panel);

  let cal = null;
  let marks = new Map();
  const draw = () => {
    const rows = rowsFor(cal, cls.value);
    const starts = cal.starts.map((s) => Date.parse(s));
    grid.replaceChildren(
      heatmap({
        caption: `Free ${classLabel(cls.value)} per ${rows[0]?.kind || "site"}, by ${cal.resolution}, from ${when(starts[0])}`,
        starts, bucketMs: cal.bucket_s * 1000, resolution: cal.resolution, rows, marks,
        onRow: cls.value === "BANDWIDTH_GBPS" ? null : (name) => showSite(panel, inv, name),
      }),
    );
  };
  const load = async () => {
    const [start, end] = rangeFor(resolution.value, from.value ? new Date(`${from.value}T00:00`) : new Date());
    const wanted = `#/calendar?resolution=${resolution.value}&class=${cls.value}&from=${from.value}`;
    if (location.hash !== wanted) history.replaceState(null, "", wanted);
    grid.replaceChildren(status("Loading the calendar…"));
    try {
      const [c, m] = await Promise.all([fetchCalendar(start, end, resolution.value, signal), leaseMarks(inv, start, end, signal)]);
      cal = c;
      marks = m.marks;
      main.dataset.leases = m.count;
      draw();
    } catch (e) {
      if (signal.aborted) return;
      grid.replaceChildren();
      showProblem(form, e, pointers(form));
    }
  };
  resolution.addEventListener("change", load);
  from.addEventListener("change", load);
  cls.addEventListener("change", () => {
    history.replaceState(null, "", `#/calendar?resolution=${resolution.value}&class=${cls.value}&from=${from.value}`);
    if (cal) draw();
  });
  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  await load();
}

async function showSite(panel, inv, name) {
  const site = inv.sites.find((s) => s.name === name);
  if (!site) return;
  const hosts = inv.hosts.filter((x) => x.parent_uuid === site.uuid).sort((a, b) => a.name.localeCompare(b.name));
  const links = inv.links.filter((l) => l.endpoints.includes(name));
  const ports = inv.ports.filter((p) => p.site === name);
  const cap = (x) => Object.entries(x.inventories).map(([c, v]) => `${c} ${v.capacity}`).join(", ");
  panel.replaceChildren(
    h("div", { class: "panel-head" }, h("h3", {}, `Site ${name}`),
      h("button", { type: "button", onclick: () => { panel.hidden = true; } }, "Close")),
    site.location ? h("p", {}, `Location: ${site.location.lat}, ${site.location.lon}`) : null,
    h("h4", {}, `Hosts (${hosts.length})`),
    h("table", { class: "list" }, h("thead", {}, h("tr", {}, h("th", {}, "Host"), h("th", {}, "Capacity"), h("th", {}, "Traits"))),
      h("tbody", {}, hosts.map((x) => h("tr", {}, h("td", {}, x.name), h("td", {}, cap(x)), h("td", {}, x.traits.join(", ")))))),
    h("h4", {}, `Links (${links.length})`),
    h("ul", {}, links.map((l) => h("li", {}, `${l.name}: ${l.endpoints.join(" ↔ ")}, ${l.bandwidth_gbps} Gbps, ${l.latency_ms} ms`))),
    h("h4", {}, `Facility ports (${ports.length})`),
    h("ul", {}, ports.map((p) => h("li", {}, `${p.name}: VLANs ${p.vlans} (${p.vlan_count}), ${p.bandwidth_gbps} Gbps`))),
  );
  panel.hidden = false;
  panel.focus();
}
