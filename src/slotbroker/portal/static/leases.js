// Leases: your list (newest first, filtered by status, name or id prefix, time range and site, all kept in
// the URL so a filtered view can be shared), and one lease with its placement, events and transitions;
// start a pending lease earlier (compaction), extend (with how far the calendar says it can go), cancel,
// and the .ics feed.

import { api, get, post } from "./api.js";
import { busy, download, field, fromLocalInput, h, iso, localInput, select, span, status, when } from "./dom.js";
import { inventory, sitesOf, whoAmI } from "./inventory-cache.js";
import { clearProblems, pointers, showProblem } from "./problems.js";

const FILTERS = [
  ["current", "pending and active", ["PENDING", "ACTIVE"]],
  ["all", "all", []],
  ["PENDING", "pending", ["PENDING"]],
  ["ACTIVE", "active", ["ACTIVE"]],
  ["ENDED", "ended", ["ENDED"]],
  ["CANCELLED", "cancelled", ["CANCELLED"]],
];

// Your pending and active leases as an iCalendar file (fetched with the token, then saved).
function icsButton() {
  const b = h("button", { type: "button" }, "Download .ics");
  const query = { status: ["PENDING", "ACTIVE"] };
  b.addEventListener("click", () => busy(b, get("/v1/leases.ics", query, { accept: "text/calendar" })
    .then((blob) => download(blob, "leases.ics"))));
  return b;
}

const PAGE = 50;

// The filters a URL names (#/leases?status=&name=&site=&from=&to=), defaults filled in.
export function filtersOf(params) {
  return {
    status: FILTERS.some(([v]) => v === params.get("status")) ? params.get("status") : "current",
    name: params.get("name") || "",
    site: params.get("site") || "",
    from: params.get("from") || "",
    to: params.get("to") || "",
  };
}

function hashOf(f) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v && !(k === "status" && v === "current")) q.set(k, v);
  const text = q.toString();
  return `#/leases${text ? `?${text}` : ""}`;
}

// Every filter goes to the API (GET /v1/leases status, name, site, start, end), one page at a time.
export async function leasesPage(main, signal, params) {
  const who = await whoAmI();
  const inv = await inventory();
  const f = filtersOf(params);
  const chooser = select(FILTERS.map(([v, t]) => [v, t]), f.status, { name: "status", dataset: { pointer: "#/query/status" } });
  const name = h("input", { type: "search", name: "name", value: f.name, autocomplete: "off", spellcheck: "false" });
  const site = select([["", "any"], ...inv.sites.map((s) => [s.name, s.name])], f.site, { name: "site" });
  const from = h("input", { type: "date", name: "from", value: f.from, dataset: { pointer: "#/query/start" } });
  const to = h("input", { type: "date", name: "to", value: f.to, dataset: { pointer: "#/query/end" } });
  const form = h("form", { class: "controls filters", novalidate: true, "aria-label": "Filter leases" },
    h("div", { class: "form-error" }),
    field("Status", chooser), field("Name or id starts with", name), field("Site", site),
    field("From", from, "Leases still running on this day or later."), field("To", to, "Leases starting on this day or earlier."),
    h("button", { type: "submit" }, "Apply"), h("a", { href: "#/leases", class: "clear" }, "Clear filters"));
  const list = h("div", { "aria-live": "polite" });
  const count = h("p", { class: "hint", role: "status" });
  let cursor = null;
  let shown = 0;
  const more = h("button", { type: "button", hidden: true }, "Older leases");
  const current = () => ({ status: chooser.value, name: name.value.trim(), site: site.value, from: from.value, to: to.value });
  let generation = 0; // a newer load (filters changed again) makes an older one's answer moot
  const load = async (reset) => {
    const now = current();
    const mine = reset ? ++generation : generation;
    if (reset) { list.replaceChildren(); cursor = null; shown = 0; }
    const statuses = FILTERS.find(([v]) => v === now.status)[2];
    const query = {
      status: statuses, project: who.project, limit: PAGE,
      name: now.name || undefined, site: now.site || undefined,
      start: now.from ? iso(new Date(`${now.from}T00:00`)) : undefined,
      end: now.to ? iso(new Date(new Date(`${now.to}T00:00`).getTime() + 86400e3)) : undefined,
    };
    const page = await get("/v1/leases", { ...query, cursor }, { signal });
    if (mine !== generation) return;
    cursor = page.next_cursor;
    const found = page.items;
    more.hidden = !cursor;
    shown += found.length;
    count.textContent = `${shown} lease${shown === 1 ? "" : "s"} shown${cursor ? "; older ones below" : ""}.`;
    if (!shown) {
      list.replaceChildren(status("No leases match."));
      return;
    }
    let table = list.querySelector("tbody");
    if (!table) {
      list.replaceChildren(h("table", { class: "list leases" },
        h("caption", { class: "hint" }, "Your leases, newest first"),
        h("thead", {}, h("tr", {}, ["Lease", "Status", "Start", "End", "Sites", "Where"].map((x) => h("th", { scope: "col" }, x)))),
        h("tbody")));
      table = list.querySelector("tbody");
    }
    for (const l of found) {
      const sites = [...new Set(l.items.flatMap((i) => sitesOf(inv, i.provider_name)))].sort();
      const where = [...new Set(l.items.map((i) => i.provider_name))].slice(0, 4).join(", ");
      table.append(h("tr", { dataset: { lease: l.id } },
        h("th", { scope: "row" }, h("a", { href: `#/leases/${l.id}` }, l.name || l.id.slice(0, 8))),
        h("td", {}, h("span", { class: `badge ${l.status.toLowerCase()}` }, l.status)),
        h("td", {}, when(l.start)), h("td", {}, when(l.end)), h("td", {}, sites.join(", ")), h("td", {}, where)));
    }
  };
  const apply = async () => {
    clearProblems(form);
    const now = current();
    if (now.from && now.to && now.to < now.from) {
      showProblem(form, { problem: { title: "Bad range", errors: [{ pointer: "#/query/end", detail: "To is before From" }] } });
      return;
    }
    const wanted = hashOf(now);
    if (location.hash !== wanted) history.replaceState(null, "", wanted);
    try {
      await load(true);
    } catch (err) {
      if (!signal.aborted) showProblem(form, err);
    }
  };
  for (const el of [chooser, site, from, to]) el.addEventListener("change", apply);
  form.addEventListener("submit", (e) => { e.preventDefault(); apply(); });
  more.addEventListener("click", () => busy(more, load(false)));
  main.replaceChildren(h("h2", {}, "Leases"), form, h("p", { class: "actions" }, icsButton()), count, list, more);
  await apply();
}

// How far each item could run on past the lease's end, from the hourly calendar of its providers.
async function extensionLimit(lease) {
  const end = Date.parse(lease.end);
  const horizon = end + 14 * 86400e3;
  const names = [...new Set(lease.items.map((i) => i.provider_name))];
  const cal = await get("/v1/calendar", {
    start: iso(end), end: iso(horizon), resolution: "hour", kind: ["host", "link", "facility_port"], name: names,
  });
  const need = new Map(); // (provider, class) -> amount, instances on one host added up
  for (const item of lease.items) {
    if (item.vlan_tag) continue; // a tag is one of many: the calendar counts tags, not this one
    const key = `${item.provider_name}\u0000${item.resource_class}`;
    need.set(key, (need.get(key) || 0) + item.amount);
  }
  let limit = horizon;
  for (const [key, amount] of need) {
    const [name, cls] = key.split("\u0000");
    const row = cal.rows.find((r) => r.name === name && r.resource_class === cls);
    if (!row) continue;
    const i = row.free.findIndex((f) => f < amount);
    if (i >= 0) limit = Math.min(limit, Date.parse(cal.starts[i]));
  }
  return { limit, horizon };
}

export async function leasePage(main, signal, id) {
  const lease = await get(`/v1/leases/${id}`, undefined, { signal });
  const live = ["PENDING", "ACTIVE"].includes(lease.status);
  const items = h("table", { class: "list" },
    h("thead", {}, h("tr", {}, ["Provider", "Class", "Amount", "VLAN"].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, lease.items.map((i) => h("tr", {},
      h("td", {}, i.provider_name), h("td", {}, i.resource_class), h("td", {}, i.amount), h("td", {}, i.vlan_tag ?? "")))));
  const history = h("ul", {},
    lease.transitions.map((t) => h("li", {}, `${when(t.at)}: ${t.status}`)),
    lease.events.map((e) => h("li", {}, `${e.kind} event due ${when(e.due)}${e.fired_at ? `, fired ${when(e.fired_at)}` : ""}`)),
    lease.notices.map((n) => h("li", {}, `${when(n.at)}: ${n.detail}`)));
  const parts = [
    h("h2", {}, `Lease ${lease.name || lease.id}`),
    h("p", {}, h("span", { class: `badge ${lease.status.toLowerCase()}`, id: "lease-status" }, lease.status),
      ` ${when(lease.start)} → ${when(lease.end)} (${span(lease.end_s - lease.start_s)}) · project ${lease.project} · id `,
      h("code", {}, lease.id)),
    h("h3", {}, "Placement"), items,
    h("h3", {}, "History and events"), history,
  ];
  if (lease.status === "PENDING") parts.push(compactForm(lease, main, signal));
  if (live) parts.push(extendForm(lease, main, signal), cancelForm(lease, main, signal));
  const one = h("button", { type: "button" }, "This lease as .ics");
  one.addEventListener("click", () => busy(one, get(`/v1/leases/${lease.id}.ics`, undefined, { accept: "text/calendar" })
    .then((blob) => download(blob, `lease-${lease.id.slice(0, 8)}.ics`))));
  parts.push(h("p", { class: "actions" }, one, icsButton(), h("a", { href: "#/leases" }, "All leases")));
  main.replaceChildren(...parts);
}

function extendForm(lease, main, signal) {
  const end = h("input", { type: "datetime-local", name: "end", value: localInput(Date.parse(lease.end) + 3600e3), dataset: { pointer: "/end" } });
  const how = h("p", { class: "hint", id: "extend-limit" }, "Checking how far it can go…");
  const form = h("form", { class: "extend", novalidate: true, "aria-label": "Extend" },
    h("h3", {}, "Extend"), h("div", { class: "form-error" }),
    field("New end", end), how, h("button", { type: "submit", class: "primary" }, "Extend lease"));
  extensionLimit(lease).then(({ limit, horizon }) => {
    how.textContent = limit >= horizon
      ? `Free to run on for at least two weeks past its end (hourly calendar).`
      : `Free to run on until about ${when(limit)} (hourly calendar; the server has the last word).`;
    how.dataset.limit = new Date(limit).toISOString();
  }).catch(() => { how.textContent = ""; });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    busy(form.querySelector("button"), (async () => {
      clearProblems(form);
      const t = fromLocalInput(end.value);
      try {
        await api("PATCH", `/v1/leases/${lease.id}`, { body: { generation: lease.generation, end: t ? iso(t) : end.value } });
        await leasePage(main, signal, lease.id);
        main.prepend(status("Extended.", "ok"));
      } catch (err) {
        showProblem(form, err, pointers(form, [["/generation", end]]));
      }
    })());
  });
  return form;
}

// Move a pending lease to its earliest start, as if it were gone from the calendar (never later).
function compactForm(lease, main, signal) {
  const swap = h("input", { type: "checkbox", name: "allow_host_swap", checked: true, dataset: { pointer: "/allow_host_swap" } });
  const form = h("form", { class: "compact", novalidate: true, "aria-label": "Start earlier" },
    h("h3", {}, "Start earlier"), h("div", { class: "form-error" }),
    h("p", { class: "hint" }, "Moves this lease to the earliest time it fits, if that is earlier; never later."),
    h("label", {}, swap, " other hosts of the same site and traits may take it"),
    h("button", { type: "submit", class: "primary" }, "Start as early as possible"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    busy(form.querySelector("button"), (async () => {
      clearProblems(form);
      try {
        const out = await post(`/v1/leases/${lease.id}/compact`, { generation: lease.generation, allow_host_swap: swap.checked });
        await leasePage(main, signal, lease.id);
        main.prepend(out.moved
          ? status(`Moved: it now starts ${when(out.lease.start)} (was ${when(out.previous_start)}).`, "ok")
          : status(`Nothing earlier fits; it still starts ${when(out.lease.start)}.`, "info"));
      } catch (err) {
        showProblem(form, err, pointers(form, [["/generation", swap]]));
      }
    })());
  });
  return form;
}

function cancelForm(lease, main, signal) {
  const ask = h("button", { type: "button", class: "danger" }, "Cancel lease");
  const sure = h("button", { type: "button", class: "danger", hidden: true }, "Yes, cancel it");
  const keep = h("button", { type: "button", hidden: true }, "Keep it");
  const box = h("div", { class: "cancel" }, h("div", { class: "form-error" }), ask, sure, keep);
  const toggle = (asking) => { ask.hidden = asking; sure.hidden = !asking; keep.hidden = !asking; (asking ? keep : ask).focus(); };
  ask.addEventListener("click", () => toggle(true));
  keep.addEventListener("click", () => toggle(false));
  sure.addEventListener("click", () => busy(sure, (async () => {
    try {
      await post(`/v1/leases/${lease.id}/cancel`);
      await leasePage(main, signal, lease.id);
      main.prepend(status("Cancelled: its capacity is free again.", "ok"));
    } catch (err) {
      showProblem(box, err, new Map());
    }
  })()));
  return box;
}
