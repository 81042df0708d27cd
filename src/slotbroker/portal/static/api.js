// The one way the portal talks to the server: the public /v1 API, same origin, Bearer token from the
// browser session. Errors arrive as RFC 9457 problems and are thrown as ApiError for forms to place.

const KEY = "slotbroker.token";

export const session = {
  get token() {
    return sessionStorage.getItem(KEY);
  },
  signIn(token) {
    sessionStorage.setItem(KEY, token);
  },
  signOut() {
    sessionStorage.removeItem(KEY);
  },
};

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function url(path, query) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    for (const x of [].concat(v)) if (x !== undefined && x !== null && x !== "") u.searchParams.append(k, x);
  }
  return u;
}

function headers(extra) {
  const h = { Accept: "application/json", ...extra };
  const token = session.token;
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

async function fail(resp) {
  let problem;
  try {
    problem = await resp.json();
  } catch {
    problem = { title: resp.statusText, detail: `HTTP ${resp.status}` };
  }
  if (resp.status === 401) dispatchEvent(new CustomEvent("sb-unauthorized"));
  throw new ApiError(resp.status, problem);
}

export async function api(method, path, { query, body, signal, accept } = {}) {
  const init = { method, headers: headers(accept ? { Accept: accept } : {}), signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(url(path, query), init);
  if (!resp.ok) await fail(resp);
  if (resp.status === 204) return null;
  if (accept && !accept.includes("json")) return resp.blob();
  return resp.json();
}

export const get = (path, query, opts = {}) => api("GET", path, { ...opts, query });
export const post = (path, body, opts = {}) => api("POST", path, { ...opts, body });

// Every item of a keyset-paged list (``{items, next_cursor}``), up to ``max``.
export async function all(path, query, max = 5000) {
  const items = [];
  let cursor;
  do {
    const page = await get(path, { ...query, cursor, limit: 1000 });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

// Server-sent events over fetch (EventSource cannot send the Authorization header). Calls ``onEvent``
// with {event, id, data} until the stream ends or ``signal`` aborts it.
export async function stream(path, onEvent, signal) {
  const resp = await fetch(url(path), { headers: headers({ Accept: "text/event-stream" }), signal });
  if (!resp.ok) await fail(resp);
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll("\r\n", "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = { event: "message", id: null, data: "" };
      for (const line of buffer.slice(0, cut).split("\n")) {
        const colon = line.indexOf(":");
        if (colon === 0) continue; // a comment (keep-alive)
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") frame.data += (frame.data ? "\n" : "") + val;
        else if (field === "event") frame.event = val;
        else if (field === "id") frame.id = val;
      }
      buffer = buffer.slice(cut + 2);
      if (frame.data || frame.event !== "message") onEvent(frame);
    }
  }
}

// Upload with progress (fetch cannot report upload progress): resolves with the parsed answer.
export function upload(method, path, body, contentType, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url(path).toString());
    for (const [k, v] of Object.entries(headers({ "Content-Type": contentType }))) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => onProgress("upload", e.lengthComputable ? e.loaded / e.total : null);
    xhr.upload.onload = () => onProgress("processing", null);
    xhr.onerror = () => reject(new ApiError(0, { title: "Network error", detail: "the server could not be reached" }));
    xhr.onload = () => {
      let data;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = { detail: xhr.responseText };
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, data));
    };
    xhr.send(body);
  });
}
