// Find Available Window: a multi-component request (components, links with bandwidth, facility ports,
// range, duration, policy) -> windows with placement and routes, drawn on the calendar -> "Get offers"
// (held until a visible expiry) -> "Accept" -> the lease. Nothing fits -> why, in words.

import { get, post } from "./api.js";
import { busy, field, fromLocalInput, h, iso, localInput, select, span, startOfHour, status, when } from "./dom.js";
import { heatmap } from "./heatmap.js";
import { inventory } from "./inventory-cache.js";
import { clearProblems, showProblem } from "./problems.js";

// the API's placement policies (domain/request.py Policy; tests/portal/test_portal_app.py holds them equal)
const POLICIES = ["earliest", "first_fit", "best_fit", "spread", "latency", "least_gap"];
const num = (attrs) => h("input", { type: "number", inputmode: "numeric", ...attrs });

function componentRow(list, inv, gpus, preset = {}) {
  const i = list.children.length;
  const name = h("input", { type: "text", name: "name", value: preset.name || `c${i + 1}`, autocomplete: "off" });
  const count = num({ name: "count", value: preset.count ?? 1, min: 1 });
  const cores = num({ name: "cores", value: preset.cores ?? 4, min: 0 });
  const memory = num({ name: "memory", value: preset.memory ?? 16, min: 0 });
  const disk = num({ name: "disk", value: preset.disk ?? "", min: 0 });
  const gpu = select([["", "none"], ...gpus.map((g) => [g, g.replace(/^GPU_/, "").replaceAll("_", " ")])], preset.gpu || "", { name: "gpu" });
  const gpuCount = num({ name: "gpu_count", value: preset.gpuCount ?? 1, min: 1 });
  const site = select([["", "any"], ...inv.sites.map((s) => [s.name, s.name])], preset.site || "", { name: "site" });
  const remove = h("button", { type: "button", class: "small" }, "Remove");
  const row = h("fieldset", { class: "component" },
    h("legend", {}, "Component"),
    field("Name", name), field("Count", count), field("Cores", cores), field("Memory (GB)", memory),
    field("Disk (GB)", disk), field("GPU model", gpu), field("GPUs each", gpuCount), field("Site", site), remove);
  remove.addEventListener("click", () => { row.remove(); list.dispatchEvent(new Event("change", { bubbles: true })); });
  // "GPUs each" means nothing without a model: greyed out (and not sent) until one is chosen
  const gpuChosen = () => { gpuCount.disabled = !gpu.value; };
  gpu.addEventListener("change", gpuChosen);
  gpuChosen();
  list.append(row);
  renumber(list);
  return row;
}

// Number a list's fieldsets ("Component 2") and name their Remove buttons after them, so each control
// says which row it belongs to when read alone (screen readers, voice control).
function renumber(list) {
  list.querySelectorAll(":scope > fieldset").forEach((row, i) => {
    const legend = row.querySelector("legend");
    const what = legend.dataset.what ||= legend.textContent;
    legend.textContent = `${what} ${i + 1}`;
    row.querySelector("button").setAttribute("aria-label", `Remove ${what.toLowerCase()} ${i + 1}`);
  });
}

// Keep the component choosers of links and ports in step with the components' names.
function syncNames(form, names) {
  for (const sel of form.querySelectorAll('fieldset.link select[name="a"], fieldset.link select[name="b"], fieldset.port select[name="component"]')) {
    const was = sel.value;
    const index = sel.selectedIndex;
    sel.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
    sel.value = names.includes(was) ? was : names[Math.min(Math.max(index, 0), names.length - 1)] ?? "";
  }
}

function linkRow(list, names, preset = {}) {
  const a = select(names.map((n) => [n, n]), preset.a, { name: "a" });
  const b = select(names.map((n) => [n, n]), preset.b ?? names[1], { name: "b" });
  const bw = num({ name: "bandwidth", value: preset.bandwidth ?? 10, min: 1 });
  const remove = h("button", { type: "button", class: "small" }, "Remove");
  const row = h("fieldset", { class: "link" }, h("legend", {}, "Link"),
    field("From component", a), field("To component", b), field("Bandwidth (Gbps)", bw), remove);
  remove.addEventListener("click", () => { row.remove(); renumber(list); });
  list.append(row);
  renumber(list);
  return row;
}

function portRow(list, inv, names) {
  const port = select(inv.ports.map((p) => [`${p.site}/${p.name}`, `${p.name} at ${p.site} (VLANs ${p.vlans})`]), "", { name: "port" });
  const comp = select(names.map((n) => [n, n]), names[0], { name: "component" });
  const vlans = num({ name: "vlans", value: 1, min: 1 });
  const bw = num({ name: "bandwidth", value: "", min: 1 });
  const remove = h("button", { type: "button", class: "small" }, "Remove");
  const row = h("fieldset", { class: "port" }, h("legend", {}, "Facility port"),
    field("Port", port), field("Attached to", comp), field("VLANs", vlans), field("Bandwidth (Gbps)", bw), remove);
  remove.addEventListener("click", () => { row.remove(); renumber(list); });
  list.append(row);
  renumber(list);
  return row;
}

const n = (el) => (el.value === "" ? undefined : Number(el.value));
const q = (row, name) => row.querySelector(`[name="${name}"]`);

// The find-slot request the form describes, and which control each JSON pointer belongs to.
export function buildRequest(form) {
  const map = new Map();
  const body = { components: [], links: [], facility_ports: [] };
  form.querySelectorAll("fieldset.component").forEach((row, i) => {
    const at = `/components/${i}`;
    const resources = {};
    const put = (cls, value, el) => {
      if (value !== undefined && value !== 0) resources[cls] = value;
      map.set(`${at}/resources/${cls}`, el);
    };
    put("VCPU", n(q(row, "cores")), q(row, "cores"));
    const gb = n(q(row, "memory"));
    put("MEMORY_MB", gb === undefined ? undefined : Math.round(gb * 1024), q(row, "memory"));
    put("DISK_GB", n(q(row, "disk")), q(row, "disk"));
    if (q(row, "gpu").value) {
      put(q(row, "gpu").value, n(q(row, "gpu_count")), q(row, "gpu_count"));
    }
    const c = { name: q(row, "name").value.trim(), count: n(q(row, "count")), resources };
    if (q(row, "site").value) c.site = q(row, "site").value;
    body.components.push(c);
    map.set(at, row.querySelector("legend"));
    map.set(`${at}/resources`, q(row, "cores"));
    for (const k of ["name", "count", "site"]) map.set(`${at}/${k}`, q(row, k));
  });
  form.querySelectorAll("fieldset.link").forEach((row, i) => {
    body.links.push({ a: q(row, "a").value, b: q(row, "b").value, bandwidth_gbps: n(q(row, "bandwidth")) });
    map.set(`/links/${i}`, q(row, "a"));
    map.set(`/links/${i}/b`, q(row, "b"));
    map.set(`/links/${i}/bandwidth_gbps`, q(row, "bandwidth"));
  });
  form.querySelectorAll("fieldset.port").forEach((row, i) => {
    const [site, port] = q(row, "port").value.split("/");
    const p = { site, port, component: q(row, "component").value, vlan_count: n(q(row, "vlans")) };
    if (n(q(row, "bandwidth")) !== undefined) p.bandwidth_gbps = n(q(row, "bandwidth"));
    body.facility_ports.push(p);
    map.set(`/facility_ports/${i}`, q(row, "port"));
    map.set(`/facility_ports/${i}/component`, q(row, "component"));
    map.set(`/facility_ports/${i}/vlan_count`, q(row, "vlans"));
    map.set(`/facility_ports/${i}/bandwidth_gbps`, q(row, "bandwidth"));
  });
  const rule = form.elements.sites.value; // "", same_site or different_sites: one group of all components
  if (rule && body.components.length > 1) body.groups = [{ kind: rule, components: body.components.map((c) => c.name) }];
  map.set("/groups", form.elements.sites);
  const start = fromLocalInput(form.elements.earliest_start.value);
  const end = fromLocalInput(form.elements.latest_end.value);
  body.earliest_start = start ? iso(start) : form.elements.earliest_start.value;
  body.latest_end = end ? iso(end) : form.elements.latest_end.value;
  const hours = n(form.elements.duration);
  body.duration = hours === undefined ? "" : Math.round(hours * 3600);
  body.policy = form.elements.policy.value;
  body.limit = n(form.elements.limit);
  for (const k of ["earliest_start", "latest_end", "duration", "policy", "limit"]) map.set(`/${k}`, form.elements[k]);
  if (!body.links.length) delete body.links;
  if (!body.facility_ports.length) delete body.facility_ports;
  return { body, map };
}

function placement(p) {
  return h("table", { class: "list" },
    h("thead", {}, h("tr", {}, ["Component", "Site", "Hosts"].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, Object.entries(p.placement).map(([c, hosts]) =>
      h("tr", {}, h("td", {}, c), h("td", {}, p.sites[c]), h("td", {}, hosts.join(", "))))),
  );
}

function routes(p) {
  const items = [
    ...p.routes.map((r) => `${r.a} ↔ ${r.b}: ${r.links.length ? r.links.join(" → ") : "same site"} (${r.latency_ms.toFixed(1)} ms)`),
    ...p.ports.map((x) => `${x.component} → port ${x.port} at ${x.site}: VLAN ${x.vlans.join(", ")}${x.links.length ? ` via ${x.links.join(" → ")}` : ""}`),
  ];
  return items.length ? h("ul", { class: "routes" }, items.map((t) => h("li", {}, t))) : null;
}

export function explain(ex) {
  if (!ex) return status("Nothing fits in this range.", "warn");
  return h("div", { class: "explanation", role: "status" },
    h("p", {}, h("strong", {}, "Nothing fits in this range."), " Why:"),
    h("ul", {}, ex.blockers.map((b) => h("li", {},
      b.detail,
      b.component ? ` (component ${b.component}${b.resource_class ? `, ${b.resource_class}` : ""})` : "",
      b.earliest_if_relaxed ? `. If this alone were relaxed, the earliest start would be ${when(b.earliest_if_relaxed)}.` : ".",
    ))),
    ex.earliest_after_range ? h("p", {}, `The earliest start after your range: ${when(ex.earliest_after_range)}.`) : null,
  );
}

async function drawWindows(target, result) {
  const sites = [...new Set(result.windows.flatMap((w) => Object.values(w.sites)))];
  const start = startOfHour(Date.parse(result.search_start));
  const last = Math.max(...result.windows.map((w) => Date.parse(w.end)));
  const hours = Math.min(24 * 7, Math.max(24, Math.ceil((last - start) / 3600e3) + 2));
  const resolution = hours > 72 ? "day" : "hour";
  const s = resolution === "day" ? new Date(new Date(start).setHours(0, 0, 0, 0)) : start;
  const bucket = resolution === "day" ? 86400e3 : 3600e3;
  const e = new Date(s.getTime() + Math.ceil((last - s) / bucket + 1) * bucket);
  const cal = await get("/v1/calendar", { start: iso(s), end: iso(e), resolution, kind: "site", name: sites, resource_class: "VCPU" });
  const marks = new Map();
  result.windows.forEach((w, i) => {
    for (const [comp, site] of Object.entries(w.sites)) {
      const m = marks.get(site) || [];
      m.push({ start: Date.parse(w.start), end: Date.parse(w.end), kind: "win", label: `window ${i + 1}: ${comp}`, id: `w${i + 1}` });
      marks.set(site, m);
    }
  });
  target.replaceChildren(heatmap({
    caption: "Free cores at the sites of the windows found (◆ marks each window)",
    starts: cal.starts.map((x) => Date.parse(x)), bucketMs: cal.bucket_s * 1000, resolution,
    rows: cal.rows.sort((a, b) => a.name.localeCompare(b.name)), marks,
  }));
}

function countdown(el, expires, onExpire) {
  const tick = () => {
    const left = Math.round((Date.parse(expires) - Date.now()) / 1000);
    if (left <= 0) {
      el.textContent = "expired";
      onExpire();
      return false;
    }
    el.textContent = `expires in ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    return true;
  };
  if (!tick()) return;
  const timer = setInterval(() => { if (!el.isConnected || !tick()) clearInterval(timer); }, 1000);
}

function showOffers(target, set, form, map) {
  if (set.status === "EMPTY") {
    target.replaceChildren(h("h3", {}, "Offers"), explain(set.explanation));
    return;
  }
  const accepted = h("div", { class: "accepted", "aria-live": "polite" });
  const cards = set.offers.map((o, i) => {
    const clock = h("span", { class: "countdown", dataset: { expires: o.expires } });
    const accept = h("button", { type: "button", class: "primary", "aria-label": `Accept offer ${i + 1}` }, "Accept");
    accept.addEventListener("click", () => busy(accept, (async () => {
      clearProblems(form);
      try {
        const lease = await post(`/v1/offers/${o.id}/accept`);
        for (const b of target.querySelectorAll("button")) b.disabled = true;
        accepted.replaceChildren(
          h("p", { class: "status ok", role: "status" }, `Booked: lease ${lease.uuid} (${lease.status}), ${when(lease.start)} → ${when(lease.end)}. `,
            h("a", { href: `#/leases/${lease.uuid}` }, "Open the lease"), " · ",
            h("a", { href: `#/calendar?resolution=hour&class=VCPU&from=${new Date(lease.start).toLocaleDateString("en-CA")}` }, "See it on the calendar")),
        );
        accepted.dataset.lease = lease.uuid;
        accepted.querySelector("a").focus(); // the Accept buttons are disabled now: keep the keyboard here
      } catch (e) {
        showProblem(form, e, map, "/request");
      }
    })()));
    const card = h("article", { class: "offer", dataset: { offer: o.id } },
      h("h4", {}, `Offer ${i + 1} (${o.strategy})`),
      h("p", {}, `${when(o.start)} → ${when(o.end)} (${span(o.duration_s)}) · `, clock),
      placement(o), routes(o), accept);
    countdown(clock, o.expires, () => { accept.disabled = true; card.classList.add("expired"); });
    return card;
  });
  target.replaceChildren(h("h3", {}, "Offers"), h("p", { class: "hint" }, "Each offer holds its capacity until it expires; accepting one releases the others."), ...cards, accepted);
}

export async function findPage(main) {
  const inv = await inventory();
  const gpus = inv.classes.filter((c) => c.startsWith("GPU_"));
  const components = h("div", { class: "components" });
  const links = h("div", { class: "links" });
  const ports = h("div", { class: "ports" });
  const names = () => [...components.querySelectorAll('[name="name"]')].map((x) => x.value.trim()).filter(Boolean);
  componentRow(components, inv, gpus, { name: "gpu", cores: 16, memory: 64, gpu: gpus[0] });
  componentRow(components, inv, gpus, { name: "workers", count: 2, cores: 32, memory: 128 });
  const start = startOfHour(Date.now() + 3600e3);
  const form = h("form", { class: "find", novalidate: true, "aria-label": "Find Available Window" },
    h("div", { class: "form-error" }),
    h("h3", {}, "Components"), components,
    h("button", { type: "button", class: "small", onclick: () => componentRow(components, inv, gpus).querySelector("input").focus() }, "Add component"),
    h("div", { class: "row" },
      field("Sites", select([["", "any sites"], ["same_site", "all at the same site"], ["different_sites", "each at a different site"]], "", { name: "sites" }),
        "Where the components go relative to each other (a component's own Site still applies).")),
    h("h3", {}, "Links between components"), links,
    h("button", { type: "button", class: "small", onclick: () => linkRow(links, names()).querySelector("select").focus() }, "Add link"),
    h("h3", {}, "Facility ports"), ports,
    h("button", { type: "button", class: "small", disabled: !inv.ports.length, onclick: () => portRow(ports, inv, names()).querySelector("select").focus() }, "Add facility port"),
    h("h3", {}, "When"),
    h("div", { class: "row" },
      field("Earliest start", h("input", { type: "datetime-local", name: "earliest_start", value: localInput(start) })),
      field("Latest end", h("input", { type: "datetime-local", name: "latest_end", value: localInput(start.getTime() + 7 * 86400e3) })),
      field("Duration (hours)", num({ name: "duration", value: 8, step: "any" })),
      field("Policy", select(POLICIES.map((p) => [p, p.replace("_", " ")]), "earliest", { name: "policy" })),
      field("Windows", num({ name: "limit", value: 5, min: 1, max: 50 }))),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, "Find windows"),
      h("button", { type: "button", name: "offers" }, "Get offers")),
  );
  linkRow(links, names(), { a: "gpu", b: "workers", bandwidth: 10 });
  components.addEventListener("input", (e) => { if (e.target.name === "name") syncNames(form, names()); });
  components.addEventListener("change", () => { renumber(components); syncNames(form, names()); });
  const results = h("section", { class: "results", "aria-label": "Results", "aria-live": "polite" });
  const offers = h("section", { class: "offers", "aria-label": "Offers" });
  main.replaceChildren(h("h2", {}, "Find Available Window"), form, results, offers);

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    busy(form.querySelector('[type="submit"]'), (async () => {
      const { body, map } = buildRequest(form);
      clearProblems(form);
      results.replaceChildren(status("Searching…"));
      offers.replaceChildren();
      try {
        let result = await post("/v1/find-slot", body);
        while (result.status && result.id) { // a job (202): poll it
          await new Promise((r) => setTimeout(r, 1000));
          const job = await get(`/v1/find-slot/jobs/${result.id}`);
          if (job.status === "done") result = job.result;
          else if (job.status === "failed") throw Object.assign(new Error(job.error?.detail || "the search failed"), { problem: job.error });
        }
        showResults(results, result);
      } catch (err) {
        results.replaceChildren();
        showProblem(form, err, map);
      }
    })());
  });
  form.elements.offers.addEventListener("click", (e) => busy(e.currentTarget, (async () => {
    const { body, map } = buildRequest(form);
    clearProblems(form);
    offers.replaceChildren(status("Making offers…"));
    try {
      const set = await post("/v1/offer-sets", { request: body, max_offers: 3 });
      showOffers(offers, set, form, map);
      offers.scrollIntoView({ block: "start" });
    } catch (err) {
      offers.replaceChildren();
      showProblem(form, err, map, "/request");
    }
  })()));
}

function showResults(target, result) {
  const head = h("h3", {}, `Windows (${result.windows.length})`);
  const range = h("p", { class: "hint" }, `Searched ${when(result.search_start)} → ${when(result.search_end)}${result.cached ? " (cached answer)" : ""}.`);
  if (!result.windows.length) {
    target.replaceChildren(head, range, explain(result.explanation));
    return;
  }
  const map = h("div", { class: "window-map" }, status("Drawing the windows…"));
  target.replaceChildren(head, range,
    h("ol", { class: "windows" }, result.windows.map((w, i) => h("li", { class: "window", dataset: { window: i + 1 } },
      h("h4", {}, `Window ${i + 1}: ${when(w.start)} → ${when(w.end)} (${span(w.duration_s)})`),
      placement(w), routes(w)))),
    map);
  drawWindows(map, result).catch((e) => map.replaceChildren(status(`Could not draw the windows: ${e.message}`, "error")));
}
