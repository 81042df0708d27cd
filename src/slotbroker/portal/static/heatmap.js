// The heat map: one row per site (or link), one column per bucket, each cell shaded by the share still
// free. Hovering or focusing a cell shows capacity / peak used / free; marks (your leases, found windows)
// outline the cells they cover. Arrow keys move between cells (one tab stop for the whole grid).

import { day, h, hour, when } from "./dom.js";

const LEVELS = 5;

export function classLabel(cls) {
  if (cls === "VCPU") return "cores (VCPU)";
  if (cls === "MEMORY_MB") return "memory (MEMORY_MB)";
  if (cls === "DISK_GB") return "disk (DISK_GB)";
  if (cls === "BANDWIDTH_GBPS") return "link bandwidth (Gbps)";
  if (cls === "VLAN") return "facility port VLANs";
  if (cls.startsWith("GPU_")) return `GPU ${cls.slice(4).replaceAll("_", " ")} (${cls})`;
  return cls;
}

function level(free, capacity) {
  if (capacity <= 0) return "none";
  return String(Math.min(LEVELS - 1, Math.floor((free / capacity) * LEVELS)));
}

function columnLabel(t, resolution) {
  return resolution === "hour" ? hour(t) : day(t);
}

const CORNER = { site: "Site", host: "Host", link: "Link", facility_port: "Facility port" };

// rows: [{kind, name, resource_class, capacity, used[], free[]}]; starts: bucket starts (ms); marks: row key
// -> [{start, end, kind, label, id}] (ms); onRow(key) when a row's name is clicked. ``key`` and ``label``
// name a row (default: its name), so one grid can hold hosts, links and ports of several classes.
export function heatmap({
  caption, starts, bucketMs, resolution, rows, marks = new Map(), onRow,
  key = (row) => row.name, label = (row) => row.name, corner = CORNER[rows[0]?.kind] || "Site",
}) {
  const tip = document.getElementById("tip");
  const head = h(
    "tr",
    {},
    h("th", { scope: "col", class: "corner" }, corner),
    starts.map((t, i) =>
      h("th", { scope: "col", class: resolution === "hour" && new Date(t).getHours() !== 0 && i ? "" : "edge" },
        h("span", {}, columnLabel(t, resolution))),
    ),
  );
  const body = rows.map((row) => {
    const k = key(row);
    const name = label(row);
    const mine = marks.get(k) || [];
    return h(
      "tr",
      { dataset: { row: k, kind: row.kind, class: row.resource_class } },
      h("th", { scope: "row" },
        onRow ? h("button", { type: "button", class: "linkish", onclick: () => onRow(k) }, name) : name),
      starts.map((t, i) => {
        const end = t + bucketMs;
        const over = mine.filter((m) => m.start < end && m.end > t);
        const text = `${name}, ${when(t)}: capacity ${row.capacity}, peak used ${row.used[i]}, free ${row.free[i]}`
          + over.map((m) => `; ${m.label}`).join("");
        const kinds = [...new Set(over.map((m) => m.kind))];
        return h("td", {
          class: ["cell", `lvl-${level(row.free[i], row.capacity)}`, ...kinds].join(" "),
          tabindex: "-1",
          "aria-label": text,
          dataset: {
            capacity: row.capacity, used: row.used[i], free: row.free[i], start: new Date(t).toISOString(),
            marks: over.map((m) => m.id).join(" "),
          },
        }, over.length ? h("span", { class: "mark", "aria-hidden": "true" }, kinds.includes("win") ? "◆" : "●") : "");
      }),
    );
  });
  const table = h("table", { class: "heat", role: "grid", "aria-label": caption },
    h("caption", {}, caption), h("thead", {}, head), h("tbody", {}, body));
  const cells = () => [...table.querySelectorAll("td.cell")];
  const first = table.querySelector("td.cell");
  if (first) first.tabIndex = 0;

  const show = (td) => {
    tip.replaceChildren(...td.getAttribute("aria-label").split("; ").map((line) => h("div", {}, line)));
    tip.hidden = false;
    const r = td.getBoundingClientRect();
    const left = Math.min(window.scrollX + r.left, window.scrollX + document.documentElement.clientWidth - tip.offsetWidth - 8);
    tip.style.left = `${Math.max(4, left)}px`;
    tip.style.top = `${window.scrollY + r.bottom + 6}px`;
  };
  const hide = () => { tip.hidden = true; };
  table.addEventListener("mouseover", (e) => { const td = e.target.closest("td.cell"); if (td) show(td); });
  table.addEventListener("mouseleave", hide);
  table.addEventListener("focusin", (e) => { const td = e.target.closest("td.cell"); if (td) show(td); });
  table.addEventListener("focusout", hide);
  table.addEventListener("keydown", (e) => {
    const td = e.target.closest("td.cell");
    if (!td) return;
    const tr = td.parentElement;
    const col = [...tr.children].indexOf(td);
    let next = null;
    if (e.key === "ArrowRight") next = td.nextElementSibling;
    else if (e.key === "ArrowLeft") next = td.previousElementSibling?.matches("td") ? td.previousElementSibling : null;
    else if (e.key === "ArrowDown") next = tr.nextElementSibling?.children[col];
    else if (e.key === "ArrowUp") next = tr.previousElementSibling?.children[col];
    else if (e.key === "Enter" && onRow) onRow(tr.dataset.row);
    else if (e.key === "Escape") hide();
    if (!next) return;
    e.preventDefault();
    for (const c of cells()) c.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  });
  return h("div", { class: "heat-wrap" }, table);
}

export function legend() {
  return h("p", { class: "legend" }, "Free share: ",
    [...Array(LEVELS).keys()].map((i) =>
      h("span", { class: `swatch lvl-${i}` }, `${(i * 100) / LEVELS}–${((i + 1) * 100) / LEVELS}%`)),
    " ", h("span", { class: "swatch mine" }, "● your lease"), " ", h("span", { class: "swatch win" }, "◆ found window"));
}
