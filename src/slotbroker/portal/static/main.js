// The portal's shell: sign in / out, the hash router (#/calendar, #/find, #/leases[/id], #/jobs[/id],
// #/inventory) and the navigation. Each page gets an AbortSignal that fires when the user leaves it,
// so its requests and event streams stop.

import { get, session } from "./api.js";
import { calendarPage } from "./calendar.js";
import { field, h, status } from "./dom.js";
import { findPage } from "./find.js";
import { forget, whoAmI } from "./inventory-cache.js";
import { inventoryPage } from "./inventory.js";
import { jobPage, jobsPage } from "./jobs.js";
import { leasePage, leasesPage } from "./leases.js";
import { showProblem } from "./problems.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
let leaving = new AbortController();

function signInPage() {
  main.dataset.page = "sign-in";
  main.dataset.ready = "sign-in";
  nav.hidden = true;
  who.hidden = true;
  const token = h("input", { type: "password", name: "token", autocomplete: "current-password", required: true, dataset: { pointer: "#/token" } });
  const form = h("form", { class: "sign-in", novalidate: true, "aria-label": "Sign in" },
    h("div", { class: "form-error" }),
    field("API token", token, "From `slotbroker admin token create` or printed by `make demo`. Kept in this browser tab only."),
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  main.replaceChildren(h("h2", {}, "Sign in"), form);
  token.focus();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const map = new Map([["#/token", token]]);
    if (!token.value.trim()) {
      showProblem(form, { problem: { title: "Missing", errors: [{ pointer: "#/token", detail: "enter your API token" }] } }, map);
      return;
    }
    session.signIn(token.value.trim());
    forget();
    try {
      await get("/v1/me");
    } catch (err) {
      session.signOut();
      showProblem(form, { problem: { ...err.problem, errors: [{ pointer: "#/token", detail: err.problem?.detail || err.message }] } }, map);
      return;
    }
    if (!location.hash || location.hash === "#/sign-in") location.hash = "#/calendar";
    else route();
  });
}

const PAGES = {
  calendar: (signal, rest, params) => calendarPage(main, signal, params),
  find: (signal) => findPage(main, signal),
  leases: (signal, rest, params) => (rest ? leasePage(main, signal, rest) : leasesPage(main, signal, params)),
  jobs: (signal, rest) => (rest ? jobPage(main, signal, decodeURIComponent(rest)) : jobsPage(main, signal)),
  inventory: (signal) => inventoryPage(main, signal),
};

async function route() {
  leaving.abort();
  leaving = new AbortController();
  const signal = leaving.signal;
  document.getElementById("tip").hidden = true;
  if (!session.token) {
    signInPage();
    return;
  }
  const [path, query] = (location.hash.slice(1) || "/calendar").split("?");
  const [, page, ...rest] = path.split("/");
  const show = PAGES[page] ? page : "calendar";
  nav.hidden = false;
  who.hidden = false;
  for (const a of nav.querySelectorAll("a")) {
    if (a.dataset.page === show) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  main.dataset.page = show;
  delete main.dataset.ready;
  main.setAttribute("aria-busy", "true");
  main.replaceChildren(status("Loading…"));
  try {
    const me = await whoAmI();
    document.getElementById("who-label").textContent = `${me.project} (${me.role})`;
    await PAGES[show](signal, rest.join("/"), new URLSearchParams(query || ""));
  } catch (err) {
    if (!signal.aborted && session.token) main.replaceChildren(h("h2", {}, "Something went wrong"), status(err.message, "error"));
  } finally {
    if (!signal.aborted) {
      main.removeAttribute("aria-busy");
      main.dataset.ready = show;
    }
  }
}

document.getElementById("sign-out").addEventListener("click", () => {
  session.signOut();
  forget();
  location.hash = "#/sign-in";
  route();
});
addEventListener("sb-unauthorized", () => {
  if (main.dataset.page === "sign-in") return; // the sign-in form shows the 401 itself
  session.signOut();
  forget();
  route();
});
// The skip link moves the focus to the page's content and leaves the address alone: following its
// "#main" would change the hash, which the router reads as a new (unknown) page.
document.querySelector("a.skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
// Pages keep their own state in the query with history.replaceState, which fires no hashchange; a
// hashchange is a new address (a link, a pasted shared view, Back), so the page is drawn anew.
addEventListener("hashchange", route);
route();
