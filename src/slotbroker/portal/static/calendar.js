// Calendar: free capacity per site (or link, or facility port) over time, at hour/day/week, for one
// resource class, with the caller's leases overlaid; a site's panel shows its hosts, links and facility
// ports over the same buckets. Times are shown in the browser's zone; buckets start at local midnight
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

// Which rows a class chooser value shows: bandwidth is the links', VLANs the facility ports', the rest
// the sites' (their hosts added up by the server).
const KIND_OF = { BANDWIDTH_GBPS: "link", VLAN: "facility_port" };

// Rows of /v1/calendar for sites, links and facility ports over [start, end).
export function fetchCalendar(start, end, resolution, signal) {
  return get("/v1/calendar", { start: iso(start), end: iso(end), resolution, kind: ["site", "link", "facility_port"] }, { signal });
}

export function rowsFor(cal, cls) {
  const kind = KIND_OF[cls] || "site";
  return cal.rows.filter((r) => r.kind === kind && r.resource_class === cls).sort((a, b) => a.name.localeCompare(b.name));
}

// Your leases over the range, as marks per calendar row (``marks``: site, link or port) and per provider
// (``byProvider``: host, link or port, for a site's panel).
async function leaseMarks(inv, start, end, signal) {
  const who = await whoAmI();
  const leases = await all("/v1/leases", {
    status: ["PENDING", "ACTIVE"], start: iso(start), end: iso(end), project: who.project,
  });
  const marks = new Map();
  const byProvider = new Map();
  const add = (into, key, lease, items) => {
    const list = items.map((i) => `${i.resource_class} ${i.vlan_tag ? `tag ${i.vlan_tag}` : i.amount}`);
    const label = `your lease ${lease.name || lease.id.slice(0, 8)} (${lease.status}): ${list.join(", ")}`;
    const m = into.get(key) || [];
    m.push({
      start: Date.parse(lease.start), end: Date.parse(lease.end), kind: "mine", label, id: lease.id,
      classes: new Set(items.map((i) => i.resource_class)),
    });
    into.set(key, m);
  };
  for (const lease of leases) {
    if (signal.aborted) break;
    const rows = new Map();
    const providers = new Map();
    for (const item of lease.items) {
      for (const [into, key] of [[rows, rowOf(inv, item.provider_name)], [providers, item.provider_name]]) {
        into.set(key, [...(into.get(key) || []), item]);
      }
    }
    for (const [row, list] of rows) add(marks, row, lease, list);
    for (const [name, list] of providers) add(byProvider, name, lease, list);
  }
  return { marks, byProvider, count: leases.length };
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
  const classes = [...inv.classes, "BANDWIDTH_GBPS", ...(inv.ports.length ? ["VLAN"] : [])];
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
  let byProvider = new Map();
  let range = null;
  const draw = () => {
    const rows = rowsFor(cal, cls.value);
    const starts = cal.starts.map((s) => Date.parse(s));
    const per = { site: "site", link: "link", facility_port: "facility port" }[KIND_OF[cls.value] || "site"];
    grid.replaceChildren(
      heatmap({
        caption: `Free ${classLabel(cls.value)} per ${per}, by ${cal.resolution}, from ${when(starts[0])}`,
        starts, bucketMs: cal.bucket_s * 1000, resolution: cal.resolution, rows, marks,
        onRow: KIND_OF[cls.value] ? null : (name) => showSite(panel, inv, name, { ...range, cls: cls.value, byProvider, signal }),
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
      byProvider = m.byProvider;
      range = { start, end, resolution: resolution.value };
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

// One row per host (the chosen class, or cores when the page shows links or ports), link touching the
// site (bandwidth) and facility port at the site (VLANs and bandwidth), keyed kind:name:class.
export function siteRows(cal, { hosts, links, ports }, cls) {
  const want = (kind, names, classes) => cal.rows
    .filter((r) => r.kind === kind && names.includes(r.name) && classes.includes(r.resource_class))
    .sort((a, b) => a.name.localeCompare(b.name) || classes.indexOf(a.resource_class) - classes.indexOf(b.resource_class));
  return [
    ...want("host", hosts, [cls]),
    ...want("link", links, ["BANDWIDTH_GBPS"]),
    ...want("facility_port", ports, ["VLAN", "BANDWIDTH_GBPS"]),
  ];
}

const rowKey = (r) => `${r.kind}:${r.name}:${r.resource_class}`;
function rowLabel(r) {
  if (r.kind === "link") return `link ${r.name} (Gbps)`;
  if (r.kind === "facility_port") return `port ${r.name} (${r.resource_class === "VLAN" ? "VLANs" : "Gbps"})`;
  return r.name;
}

async function siteOverTime(target, names, { start, end, resolution, cls, byProvider, signal }) {
  const hostCls = KIND_OF[cls] ? "VCPU" : cls;
  const cal = await get("/v1/calendar", {
    start: iso(start), end: iso(end), resolution, kind: ["host", "link", "facility_port"],
    name: [...names.hosts, ...names.links, ...names.ports],
  }, { signal });
  const rows = siteRows(cal, names, hostCls);
  // a host row shows every lease on the host; a link's or port's row only leases of its class (a VLAN
  // lease holds a port's tag, not its bandwidth)
  const marks = new Map(rows.map((r) => [rowKey(r),
    (byProvider.get(r.name) || []).filter((m) => r.kind === "host" || m.classes.has(r.resource_class))]));
  target.replaceChildren(heatmap({
    caption: `Free per host (${classLabel(hostCls)}), link (Gbps) and facility port (VLANs, Gbps), by ${cal.resolution}`,
    starts: cal.starts.map((x) => Date.parse(x)), bucketMs: cal.bucket_s * 1000, resolution: cal.resolution,
    rows, marks, key: rowKey, label: rowLabel, corner: "Host, link or port",
  }));
}

async function showSite(panel, inv, name, range) {
  const site = inv.sites.find((s) => s.name === name);
  if (!site) return;
  const hosts = inv.hosts.filter((x) => x.parent_uuid === site.uuid).sort((a, b) => a.name.localeCompare(b.name));
  const links = inv.links.filter((l) => l.endpoints.includes(name));
  const ports = inv.ports.filter((p) => p.site === name);
  const cap = (x) => Object.entries(x.inventories).map(([c, v]) => `${c} ${v.capacity}`).join(", ");
  const col = (text) => h("th", { scope: "col" }, text);
  const overTime = h("div", { class: "site-over-time", "aria-live": "polite" }, status("Loading the site's calendar…"));
  panel.replaceChildren(
    h("div", { class: "panel-head" }, h("h3", {}, `Site ${name}`),
      h("button", { type: "button", "aria-label": `Close site ${name}`, onclick: () => { panel.hidden = true; } }, "Close")),
    site.location ? h("p", {}, `Location: ${site.location.lat}, ${site.location.lon}`) : null,
    h("h4", {}, "Hosts, links and facility ports over time"), overTime,
    h("h4", {}, `Hosts (${hosts.length})`),
    h("table", { class: "list hosts" }, h("thead", {}, h("tr", {}, col("Host"), col("Capacity"), col("Traits"))),
      h("tbody", {}, hosts.map((x) => h("tr", {}, h("td", {}, x.name), h("td", {}, cap(x)), h("td", {}, x.traits.join(", ")))))),
    h("h4", {}, `Links (${links.length})`),
    h("ul", {}, links.map((l) => h("li", {}, `${l.name}: ${l.endpoints.join(" ↔ ")}, ${l.bandwidth_gbps} Gbps, ${l.latency_ms} ms`))),
    h("h4", {}, `Facility ports (${ports.length})`),
    h("ul", {}, ports.map((p) => h("li", {}, `${p.name}: VLANs ${p.vlans} (${p.vlan_count}), ${p.bandwidth_gbps} Gbps`))),
  );
  panel.hidden = false;
  panel.focus();
  const names = { hosts: hosts.map((x) => x.name), links: links.map((l) => l.name), ports: ports.map((p) => `${p.site}/${p.name}`) };
  try {
    await siteOverTime(overTime, names, range);
  } catch (e) {
    if (!range.signal.aborted) overTime.replaceChildren(status(`Could not load the site's calendar: ${e.message}`, "error"));
  }
}
