// Small DOM and time helpers. Text from the server is always set as text, never parsed as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

let ids = 0;
export const uid = (prefix = "f") => `${prefix}-${++ids}`;

// A labelled control: <div class="field"><label for=id>text</label><control id=id></div>.
export function field(label, control, hint) {
  control.id ||= uid();
  const wrap = h("div", { class: "field" }, h("label", { for: control.id }, label), control);
  if (hint) {
    const hid = uid("hint");
    control.setAttribute("aria-describedby", hid);
    wrap.append(h("p", { class: "hint", id: hid }, hint));
  }
  return wrap;
}

export function select(options, value, attrs = {}) {
  return h(
    "select",
    attrs,
    options.map(([v, text]) => h("option", { value: v, selected: String(v) === String(value) }, text)),
  );
}

export const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
const whenFmt = new Intl.DateTimeFormat(undefined, {
  weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
});
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short" });
const hourFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

export const when = (t) => whenFmt.format(new Date(t));
export const day = (t) => dayFmt.format(new Date(t));
export const hour = (t) => hourFmt.format(new Date(t));

// The wire's instant format: UTC, whole seconds.
export const iso = (t) => new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");

// <input type=datetime-local> values are wall-clock times in the browser's zone.
export function localInput(t) {
  const d = new Date(t);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
export const fromLocalInput = (value) => (value ? new Date(value) : null);

export function span(seconds) {
  const s = Math.round(seconds);
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return [d && `${d} d`, hh && `${hh} h`, m && `${m} min`].filter(Boolean).join(" ") || `${s} s`;
}

export function startOfHour(t = Date.now()) {
  const d = new Date(t);
  d.setMinutes(0, 0, 0);
  return d;
}
export function startOfDay(t = Date.now()) {
  const d = new Date(t);
  d.setHours(0, 0, 0, 0);
  return d;
}

// A status line that screen readers announce.
export function status(text, kind = "info") {
  return h("p", { class: `status ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

// Disable ``button`` while ``promise`` runs. A disabled button drops the keyboard focus, so a button
// that had it gets it back (unless the page moved focus somewhere on purpose meanwhile).
export function busy(button, promise) {
  const focused = document.activeElement === button;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  return promise.finally(() => {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    if (focused && button.isConnected && (document.activeElement === document.body || !document.activeElement)) button.focus();
  });
}

// Save a Blob as a file, e.g. an .ics fetched with the Bearer header.
export function download(blob, name) {
  const a = h("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}
