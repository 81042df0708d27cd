// RFC 9457 problems shown in words beside the field that caused them. A form maps JSON pointers into
// its request body to its controls; a problem's errors[].pointer picks the control with the longest
// matching pointer, and what no control claims is shown at the top of the form.

import { h, uid } from "./dom.js";

// pointer -> element, from the controls' data-pointer attributes (and any extra pairs).
export function pointers(root, extra = []) {
  const map = new Map(extra);
  for (const el of root.querySelectorAll("[data-pointer]")) map.set(el.dataset.pointer, el);
  return map;
}

export function clearProblems(root) {
  for (const el of root.querySelectorAll(".field-error")) el.remove();
  for (const el of root.querySelectorAll("[aria-invalid]")) {
    el.removeAttribute("aria-invalid");
    const ids = (el.getAttribute("aria-describedby") || "").split(" ").filter((x) => !x.startsWith("err-"));
    if (ids.length) el.setAttribute("aria-describedby", ids.join(" "));
    else el.removeAttribute("aria-describedby");
  }
  const top = root.querySelector(".form-error");
  if (top) top.replaceChildren();
}

function owner(map, pointer) {
  if (!pointer) return null;
  const p = pointer.replace(/^#/, "");
  let best = null;
  let length = -1;
  for (const [key, el] of map) {
    const k = key.replace(/^#/, "");
    if ((p === k || p.startsWith(`${k}/`)) && k.length > length) {
      best = el;
      length = k.length;
    }
  }
  return best;
}

function place(el, text) {
  const id = uid("err");
  el.setAttribute("aria-invalid", "true");
  el.setAttribute("aria-describedby", `${el.getAttribute("aria-describedby") || ""} ${id}`.trim());
  const msg = h("p", { class: "field-error", id, role: "alert" }, text);
  (el.closest(".field") || el).append(msg);
  return msg;
}

// Show ``error`` (an ApiError or any Error) on ``root``; ``strip`` removes a prefix from pointers
// (an offer set's request sits at /request). Returns the first control that got a message.
export function showProblem(root, error, map = pointers(root), strip = "") {
  clearProblems(root);
  const problem = error.problem || { detail: error.message };
  const errors = problem.errors?.length ? problem.errors : [{ pointer: problem.pointer, detail: problem.detail }];
  const loose = [];
  let first = null;
  for (const e of errors) {
    let pointer = e.pointer || "";
    if (strip && pointer.startsWith(strip)) pointer = pointer.slice(strip.length);
    const el = owner(map, pointer);
    if (el) {
      place(el, e.detail || problem.title);
      first ||= el;
    } else loose.push(e.detail || problem.title);
  }
  let top = root.querySelector(".form-error");
  if (!top) {
    top = h("div", { class: "form-error", id: uid("form-error") });
    root.prepend(top);
  }
  if (loose.length || !first) {
    top.append(
      h("p", { role: "alert" }, h("strong", {}, problem.title || "Error"), ": ", loose.join("; ") || problem.detail || ""),
    );
  }
  (first || top).focus?.();
  return first;
}
