// Inventory (operators): sites, hosts, links and facility ports; export and import a topology document
// with a progress display (upload, then the server's import, then its report).

import { get, upload } from "./api.js";
import { busy, download, field, h, status } from "./dom.js";
import { forget, inventory, whoAmI } from "./inventory-cache.js";
import { clearProblems, showProblem } from "./problems.js";

// Capacity in people's words, the common classes first, then GPUs, then other devices: "512 cores,
// 2,048 GB memory, 15,360 GB disk, 2 × GPU A30, 8 × NIC CONNECTX6" (the export keeps the class names).
const FIRST = ["VCPU", "MEMORY_MB", "DISK_GB"];
const rank = (c) => (FIRST.includes(c) ? `0${FIRST.indexOf(c)}` : c.startsWith("GPU_") ? `1${c}` : `2${c}`);
const count = (n) => n.toLocaleString("en-US");

function amount(cls, n) {
  if (cls === "VCPU") return `${count(n)} cores`;
  if (cls === "MEMORY_MB") return n % 1024 === 0 ? `${count(n / 1024)} GB memory` : `${count(n)} MB memory`;
  if (cls === "DISK_GB") return `${count(n)} GB disk`;
  return `${count(n)} × ${cls.replaceAll("_", " ")}`; // devices: GPUs, NICs, FPGAs, custom classes
}

export function capacityText(byClass) {
  return Object.entries(byClass).sort(([a], [b]) => (rank(a) < rank(b) ? -1 : 1)).map(([c, n]) => amount(c, n)).join(", ");
}

const caps = (x) => capacityText(Object.fromEntries(Object.entries(x.inventories).map(([c, v]) => [c, v.capacity])));

function table(head, rows) {
  return h("table", { class: "list" },
    h("thead", {}, h("tr", {}, head.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
}

function importForm(main, signal) {
  const file = h("input", { type: "file", name: "document", accept: ".json,.yaml,.yml,application/json,application/yaml" });
  const prune = h("input", { type: "checkbox", id: "prune", name: "prune" });
  const bar = h("progress", { max: 1, hidden: true, "aria-label": "Import progress" });
  const phase = h("p", { class: "hint", role: "status" });
  const go = h("button", { type: "submit", class: "primary" }, "Import");
  const form = h("form", { class: "import", novalidate: true, "aria-label": "Import a topology" },
    h("h3", {}, "Import a topology"), h("div", { class: "form-error" }),
    field("Topology document (JSON or YAML)", file, "Providers, links and ports in the topology format; applied atomically."),
    h("div", { class: "field check" }, prune, h("label", { for: "prune" }, "Delete what the document does not name")),
    go, bar, phase);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    busy(go, (async () => {
      clearProblems(form);
      const f = file.files[0];
      if (!f) {
        showProblem(form, { problem: { title: "Missing", errors: [{ pointer: "#/file", detail: "choose a document to import" }] } }, new Map([["#/file", file]]));
        return;
      }
      const yaml = /\.ya?ml$/i.test(f.name);
      bar.hidden = false;
      bar.value = 0;
      try {
        const report = await upload("POST", `/v1/topology${prune.checked ? "?prune=true" : ""}`, f,
          yaml ? "application/yaml" : "application/json",
          (what, share) => {
            if (what === "upload") {
              phase.textContent = `Uploading ${f.name}…`;
              if (share !== null) bar.value = share;
            } else {
              phase.textContent = "Importing: the server is checking and applying the document…";
              bar.removeAttribute("value"); // indeterminate
            }
          });
        bar.value = 1;
        phase.textContent = `Imported: ${report.created} created, ${report.updated} updated, ${report.unchanged} unchanged, ${report.deleted} deleted.`;
        forget();
        await showInventory(main.querySelector(".inventory-lists"), signal);
      } catch (err) {
        bar.hidden = true;
        phase.textContent = "";
        showProblem(form, err, new Map([["", file]]));
      }
    })());
  });
  return form;
}

async function showInventory(target, signal) {
  const inv = await inventory();
  if (signal.aborted) return;
  const hostsOf = (site) => inv.hosts.filter((x) => x.parent_uuid === site.uuid);
  target.replaceChildren(
    h("h3", {}, `Sites (${inv.sites.length})`),
    table(["Site", "Hosts", "Capacity (hosts together)"], inv.sites.map((s) => {
      const hosts = hostsOf(s);
      const sum = {};
      for (const x of hosts) for (const [c, v] of Object.entries(x.inventories)) sum[c] = (sum[c] || 0) + v.capacity;
      return [s.name, String(hosts.length), capacityText(sum)];
    })),
    h("details", {}, h("summary", {}, `Hosts (${inv.hosts.length})`),
      table(["Host", "Site", "Capacity", "Traits"], inv.hosts.map((x) => [x.name, inv.hostSite.get(x.name) || "", caps(x), x.traits.join(", ")]))),
    h("h3", {}, `Links (${inv.links.length})`),
    table(["Link", "Between", "Bandwidth", "Latency"], inv.links.map((l) => [l.name, l.endpoints.join(" ↔ "), `${l.bandwidth_gbps} Gbps`, `${l.latency_ms} ms`])),
    h("h3", {}, `Facility ports (${inv.ports.length})`),
    table(["Port", "Site", "VLANs", "Bandwidth"], inv.ports.map((p) => [p.name, p.site, `${p.vlans} (${p.vlan_count})`, `${p.bandwidth_gbps} Gbps`])),
  );
}

export async function inventoryPage(main, signal) {
  const who = await whoAmI();
  const exportButton = h("button", { type: "button" }, "Export the topology");
  exportButton.addEventListener("click", () => busy(exportButton,
    get("/v1/topology").then((doc) => download(new Blob([JSON.stringify(doc, null, 2)], { type: "application/json" }), "topology.json"))));
  const lists = h("div", { class: "inventory-lists" }, status("Loading the inventory…"));
  main.replaceChildren(h("h2", {}, "Inventory"),
    who.manages_inventory ? importForm(main, signal) : h("p", { class: "hint" }, "Importing a topology needs an operator or admin token."),
    h("p", {}, exportButton), lists);
  await showInventory(lists, signal);
}
