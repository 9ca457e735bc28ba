// The one place that knows whether the page runs inside the Shopify admin (App Bridge loaded
// from Shopify's CDN) or outside it (development sign-in, tests: no CDN). Pages call these
// functions and never look at window.shopify themselves.
//
//   api(path, options)      fetch /api with a fresh session token (Bearer), retried once on a
//                           401 that carries X-Shopify-Retry-Invalid-Session-Request; JSON in/out
//   toast(message, {error}) shopify.toast.show inside the admin, our own toast outside
//   confirmModal({...})     App Bridge <ui-modal> inside, a native <dialog> outside -> boolean
//   appUrl(path, params)    a link to another admin page keeping shop/host (and embedded=1)

const config = JSON.parse(document.getElementById("tidings-config").textContent);

export const shop = config.shop;
export const host = config.host || "";
export const embedded = Boolean(config.embedded);
export const page = config.page || {};

const TOKEN_MAX_AGE_MS = 45000; // tokens live 60 s
let devToken = config.devSessionToken || null;
let devTokenAt = devToken ? Date.now() : 0;

function appBridge() {
  return embedded && window.shopify ? window.shopify : null;
}

export async function sessionToken(force = false) {
  const bridge = appBridge();
  if (bridge) return bridge.idToken();
  if (force || !devToken || Date.now() - devTokenAt > TOKEN_MAX_AGE_MS) {
    const resp = await fetch("/dev/session-token?shop=" + encodeURIComponent(shop),
                             { cache: "no-store" });
    if (!resp.ok) throw new ApiError(resp.status, { code: "signed_out",
      message: "Your development session ended. Reload the page." });
    devToken = (await resp.json()).token;
    devTokenAt = Date.now();
  }
  return devToken;
}

export class ApiError extends Error {
  constructor(status, error) {
    super((error && error.message) || "Something went wrong. Try again.");
    this.status = status;
    this.code = (error && error.code) || "error";
    this.details = (error && error.details) || null;
  }
}

// Returns parsed JSON (or the Response when options.raw). Throws ApiError on any non-2xx.
export async function api(path, options = {}) {
  const { method = "GET", body, query, raw = false, headers = {} } = options;
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(key, value);
    }
    const text = params.toString();
    if (text) url += (url.includes("?") ? "&" : "?") + text;
  }
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let resp;
  for (let attempt = 0; attempt < 2; attempt++) {
    init.headers.Authorization = "Bearer " + await sessionToken(attempt > 0);
    try {
      resp = await fetch(url, init);
    } catch (err) {
      throw new ApiError(0, { code: "network", message: "We couldn't reach Tidings. Check your connection and try again." });
    }
    const retry = resp.headers.get("X-Shopify-Retry-Invalid-Session-Request") === "1";
    if (!(resp.status === 401 && retry && attempt === 0)) break;
  }
  if (raw && resp.ok) return resp;
  // A 204 (DELETE) has no body even when it is labelled JSON.
  const type = resp.headers.get("Content-Type") || "";
  const text = resp.status === 204 ? "" : await resp.text();
  let data = null;
  if (text && type.includes("json")) {
    try { data = JSON.parse(text); } catch (err) { data = null; }
  }
  if (!resp.ok) throw new ApiError(resp.status, data && data.error);
  return data;
}

// Fetch a file behind the session token and hand it to the browser as a download.
export async function download(path, filename) {
  const resp = await api(path, { raw: true, headers: { Accept: "text/csv" } });
  const blob = await resp.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

export function appUrl(path, params = {}) {
  const query = new URLSearchParams();
  query.set("shop", shop);
  if (embedded) {
    if (host) query.set("host", host);
    query.set("embedded", "1");
  }
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, value);
  }
  return path + "?" + query.toString();
}

export function navigate(path, params) {
  window.location.assign(appUrl(path, params));
}

// -- toasts --------------------------------------------------------------------------------
export function toast(message, { error = false, duration = 5000 } = {}) {
  const bridge = appBridge();
  if (bridge && bridge.toast) {
    bridge.toast.show(message, { isError: error, duration });
    return;
  }
  const region = document.getElementById("toasts");
  const item = document.createElement("div");
  item.className = "toast" + (error ? " error" : "");
  item.setAttribute("role", error ? "alert" : "status");
  const text = document.createElement("span");
  text.textContent = message;
  const close = document.createElement("button");
  close.type = "button";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "×";
  close.addEventListener("click", () => item.remove());
  item.append(text, close);
  region.append(item);
  setTimeout(() => item.remove(), duration);
}

// -- confirmation modals --------------------------------------------------------------------
let modalSeq = 0;

// body: string or Node. Resolves true when the merchant confirms, false otherwise.
export function confirmModal({ title, body, confirmLabel = "Confirm", cancelLabel = "Cancel",
                               destructive = false }) {
  const bridge = appBridge();
  return bridge ? bridgeModal(bridge, { title, body, confirmLabel, cancelLabel, destructive })
                : dialogModal({ title, body, confirmLabel, cancelLabel, destructive });
}

function bodyNode(body) {
  if (body instanceof Node) return body;
  const p = document.createElement("p");
  p.textContent = body || "";
  return p;
}

function bridgeModal(bridge, { title, body, confirmLabel, cancelLabel, destructive }) {
  return new Promise((resolve) => {
    const id = "tidings-modal-" + (++modalSeq);
    const modal = document.createElement("ui-modal");
    modal.id = id;
    const content = document.createElement("div");
    content.style.padding = "1rem";
    content.append(bodyNode(body));
    const bar = document.createElement("ui-title-bar");
    bar.setAttribute("title", title);
    const ok = document.createElement("button");
    ok.setAttribute("variant", "primary");
    if (destructive) ok.setAttribute("tone", "critical");
    ok.textContent = confirmLabel;
    const cancel = document.createElement("button");
    cancel.textContent = cancelLabel;
    bar.append(ok, cancel);
    modal.append(content, bar);
    document.body.append(modal);
    let answered = false;
    const finish = (value) => {
      if (answered) return;
      answered = true;
      bridge.modal.hide(id);
      setTimeout(() => modal.remove(), 300);
      resolve(value);
    };
    ok.onclick = () => finish(true);
    cancel.onclick = () => finish(false);
    modal.addEventListener("hide", () => finish(false));
    bridge.modal.show(id);
  });
}

function dialogModal({ title, body, confirmLabel, cancelLabel, destructive }) {
  return new Promise((resolve) => {
    const dialog = document.createElement("dialog");
    dialog.className = "modal";
    const titleId = "modal-title-" + (++modalSeq);
    dialog.setAttribute("aria-labelledby", titleId);
    const header = document.createElement("header");
    const h2 = document.createElement("h2");
    h2.id = titleId;
    h2.textContent = title;
    header.append(h2);
    const content = document.createElement("div");
    content.className = "modal-body";
    content.append(bodyNode(body));
    const footer = document.createElement("footer");
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "btn";
    cancel.textContent = cancelLabel;
    const ok = document.createElement("button");
    ok.type = "button";
    ok.className = "btn " + (destructive ? "btn-critical" : "btn-primary");
    ok.textContent = confirmLabel;
    footer.append(cancel, ok);
    dialog.append(header, content, footer);
    document.body.append(dialog);
    let value = false;
    ok.addEventListener("click", () => { value = true; dialog.close(); });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => { dialog.remove(); resolve(value); });
    dialog.showModal();
    cancel.focus();
  });
}
