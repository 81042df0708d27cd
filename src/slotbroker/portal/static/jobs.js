// Jobs: the list with live states (each unfinished job's event stream), and one job with its
// transitions, logs and a cancel button. Pending and provisioning are shown as the states they are.

import { get, post, stream } from "./api.js";
import { busy, h, status, when } from "./dom.js";
import { whoAmI } from "./inventory-cache.js";
import { showProblem } from "./problems.js";

const TERMINAL = new Set(["succeeded", "failed", "canceled", "expired"]);
const MAX_STREAMS = 8; // the server bounds open streams; a list needs only its newest few live

const badge = (state) => h("span", { class: `badge ${state}`, dataset: { state } }, state);

function follow(jobId, signal, onState) {
  let last = null;
  const run = async (tries) => {
    try {
      await stream(`/v1/jobs/${jobId}/events`, (ev) => {
        if (ev.event === "state") {
          const data = JSON.parse(ev.data);
          last = data.to_state;
          onState(data);
        } else if (ev.event === "end") last = JSON.parse(ev.data).state;
      }, signal);
    } catch (e) {
      if (signal.aborted) return;
    }
    // the stream ends at a terminal state, or on the server's timeout: reconnect then
    if (!signal.aborted && !TERMINAL.has(last) && tries < 50) setTimeout(() => run(tries + 1), 1000);
  };
  run(0);
}

// A lease link reads as the lease's name once it is known (its id until then, and as its title): one
// GET per distinct lease of the page, shared by every row of that lease.
function leaseLink(leaseId, names, signal) {
  const link = h("a", { href: `#/leases/${leaseId}`, title: leaseId }, leaseId.slice(0, 8));
  if (!names.has(leaseId)) names.set(leaseId, get(`/v1/leases/${leaseId}`, undefined, { signal }).then((l) => l.name, () => ""));
  names.get(leaseId).then((name) => { if (name) link.textContent = name; });
  return link;
}

export async function jobsPage(main, signal) {
  const who = await whoAmI();
  const tbody = h("tbody");
  const table = h("table", { class: "list jobs" },
    h("thead", {}, h("tr", {}, ["Job", "State", "Provisioner", "Lease", "Updated"].map((x) => h("th", { scope: "col" }, x)))),
    tbody);
  const note = h("p", { class: "hint" }, "States change here as they happen (the jobs' event streams).");
  main.replaceChildren(h("h2", {}, "Jobs"), note, table);
  const followed = new Set();
  const rows = new Map();
  const leaseNames = new Map();
  const refresh = async () => {
    const page = await get("/v1/jobs", { project: who.role === "admin" ? who.project : undefined, limit: 50 }, { signal });
    if (!page.items.length && !rows.size) tbody.replaceChildren(h("tr", {}, h("td", { colspan: 5 }, "No jobs yet.")));
    for (const job of [...page.items].reverse()) {
      let row = rows.get(job.id);
      if (!row) {
        if (!rows.size) tbody.replaceChildren();
        row = h("tr", { dataset: { job: job.id } },
          h("td", {}, h("a", { href: `#/jobs/${encodeURIComponent(job.id)}` }, job.name ? `${job.name} (${job.id})` : job.id)),
          h("td", { class: "state" }, badge(job.state)), h("td", {}, job.provisioner),
          h("td", { class: "lease" }, leaseLink(job.lease_id, leaseNames, signal)),
          h("td", { class: "updated" }, when(job.updated_at)));
        rows.set(job.id, row);
        tbody.prepend(row);
      }
      row.querySelector(".state").replaceChildren(badge(job.state));
      if (!TERMINAL.has(job.state) && !followed.has(job.id) && followed.size < MAX_STREAMS) {
        followed.add(job.id);
        follow(job.id, signal, (ev) => {
          row.querySelector(".state").replaceChildren(badge(ev.to_state));
          row.querySelector(".updated").textContent = when(ev.at);
        });
      }
    }
  };
  await refresh();
  const timer = setInterval(() => refresh().catch(() => {}), 10_000); // new jobs appear without a reload
  signal.addEventListener("abort", () => clearInterval(timer));
}

export async function jobPage(main, signal, id) {
  const job = await get(`/v1/jobs/${encodeURIComponent(id)}`, undefined, { signal });
  const state = h("p", {}, "State: ", h("span", { id: "job-state" }, badge(job.state)));
  const transitions = h("ol", { class: "transitions" },
    job.transitions.map((t) => h("li", {}, `${when(t.at)}: ${t.from_state ?? "—"} → ${t.to_state}${t.detail ? ` (${t.detail})` : ""}`)));
  const logs = h("pre", { class: "logs", tabindex: "0", "aria-label": "Logs" });
  const cancel = h("button", { type: "button", class: "danger", disabled: TERMINAL.has(job.state) || job.cancel_requested }, "Cancel job");
  const box = h("div", {}, h("div", { class: "form-error" }), cancel);
  main.replaceChildren(
    h("h2", {}, `Job ${job.name || job.id}`),
    state,
    h("p", {}, `Provisioner ${job.provisioner} · lease `, leaseLink(job.lease_id, new Map(), signal),
      ` · attempt ${job.attempt}${job.exit_code !== null ? ` · exit code ${job.exit_code}` : ""}${job.error ? ` · ${job.error}` : ""}`),
    h("h3", {}, "Transitions"), transitions,
    h("h3", {}, "Logs"), logs, box);
  let after = 0;
  const pull = async () => {
    for (;;) {
      const page = await get(`/v1/jobs/${encodeURIComponent(id)}/logs`, { after }, { signal });
      for (const line of page.items) logs.append(`${when(line.at)} [${line.stream}] ${line.line}\n`);
      if (page.items.length) after = page.items.at(-1).id;
      if (page.next_after === null || !page.items.length) break;
    }
    if (!logs.textContent) logs.textContent = "";
  };
  await pull();
  cancel.addEventListener("click", () => busy(cancel, post(`/v1/jobs/${encodeURIComponent(id)}/cancel`)
    .then(() => { cancel.disabled = true; main.prepend(status("Cancel requested.", "ok")); })
    .catch((e) => showProblem(box, e, new Map()))));
  if (!TERMINAL.has(job.state)) {
    follow(job.id, signal, (ev) => {
      state.querySelector("#job-state").replaceChildren(badge(ev.to_state));
      transitions.append(h("li", {}, `${when(ev.at)}: ${ev.from_state ?? "—"} → ${ev.to_state}${ev.detail ? ` (${ev.detail})` : ""}`));
      if (TERMINAL.has(ev.to_state)) cancel.disabled = true;
      pull().catch(() => {});
    });
  }
}
