// Small DOM and formatting helpers shared by the admin pages. Text is always set with
// textContent (never innerHTML), so data from the API cannot inject markup.

import { appUrl, toast } from "./bridge.js";

// h("a", {href: "/x", class: "btn"}, "text", child) -> Element. on* attributes add listeners.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else if (key === "checked" || key === "selected" || key === "disabled") el[key] = Boolean(value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function $(selector, root = document) { return root.querySelector(selector); }
export function $$(selector, root = document) { return Array.from(root.querySelectorAll(selector)); }

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  el.removeAttribute("aria-busy");
  return el;
}

export function link(path, text, params, attrs = {}) {
  return h("a", { href: appUrl(path, params), ...attrs }, text);
}

// -- formatting -----------------------------------------------------------------------------
const shopCurrency = () => (document.body.dataset.currency || "USD");

export function money(value, currency = shopCurrency()) {
  if (value === null || value === undefined || value === "") return "—";
  const number = Number(value);
  const digits = Math.abs(number) < 1 && number !== 0 ? 4 : 2;
  return new Intl.NumberFormat(undefined, { style: "currency", currency,
    minimumFractionDigits: 2, maximumFractionDigits: digits }).format(number);
}

export function number(value) {
  if (value === null || value === undefined) return "—";
  return new Intl.NumberFormat().format(Number(value));
}

// "1 order", "3 orders": a count with the noun it needs.
export function count(value, one, many) {
  return `${number(value || 0)} ${Number(value) === 1 ? one : many}`;
}

export function percent(rate, digits = 1) {
  if (rate === null || rate === undefined || rate === "") return "—";
  return (Number(rate) * 100).toFixed(digits) + "%";
}

export function dateTime(value) {
  if (!value) return "—";
  return new Date(value).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function dateOnly(value) {
  if (!value) return "—";
  const date = typeof value === "string" && value.length === 10 ? new Date(value + "T12:00:00") : new Date(value);
  return date.toLocaleDateString(undefined, { dateStyle: "medium" });
}

export function humanize(text) {
  if (!text) return "";
  const words = String(text).replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

// -- badges ---------------------------------------------------------------------------------
const TONES = {
  subscribed: "success", delivered: "success", sent: "success", done: "success", active: "success",
  on: "success", completed: "success", confirmed: "success",
  pending: "attention", queued: "attention", scheduled: "info", sending: "info", running: "info",
  draft: "new", off: "new", skipped: "new", never: "new", held_out: "new",
  unsubscribed: "critical", failed: "critical", undelivered: "warning", cancelled: "new",
  opted_out: "critical", exited: "new", requested: "attention", resubscribed: "success",
  success: "success", info: "info", critical: "critical", warning: "warning", attention: "attention",
};

export function badge(status, label) {
  const tone = TONES[status] || "new";
  return h("span", { class: `badge badge-${tone}` }, label || humanize(status));
}

// -- page states ----------------------------------------------------------------------------
export function skeleton(lines = 3) {
  const wrap = h("div", { "aria-hidden": "true" }, h("span", { class: "skeleton title" }));
  for (let i = 0; i < lines; i++) wrap.append(h("span", { class: "skeleton" + (i % 2 ? " short" : "") }));
  return wrap;
}

const EMPTY_ICON = '<svg viewBox="0 0 80 80" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="3"><rect x="14" y="10" width="52" height="60" rx="8"/><path d="M26 28h28M26 40h28M26 52h16"/></svg>';

// What to do first, with the action that does it.
export function emptyState({ title, text, action }) {
  const icon = h("div");
  icon.innerHTML = EMPTY_ICON; // a constant, not data
  return h("div", { class: "empty" }, icon.firstChild, h("h2", {}, title), h("p", {}, text),
           action || null);
}

export function errorState(error, retry) {
  const message = error && error.message ? error.message : "Something went wrong.";
  return h("div", { class: "error-state", role: "alert" },
    h("h2", {}, "This couldn't be loaded"), h("p", {}, message),
    retry ? h("button", { type: "button", class: "btn", onclick: retry }, "Try again") : null);
}

// Run loader(); show a skeleton in `el` meanwhile and an error state with "Try again" on failure.
export async function load(el, loader, { lines = 3 } = {}) {
  el.setAttribute("aria-busy", "true");
  replace(el, skeleton(lines));
  el.setAttribute("aria-busy", "true");
  try {
    const result = await loader();
    el.removeAttribute("aria-busy");
    return result;
  } catch (error) {
    replace(el, errorState(error, () => load(el, loader, { lines })));
    return undefined;
  }
}

// -- tables ---------------------------------------------------------------------------------
// columns: [{label, cell(row) -> Node|string, num?, class?}]
export function table(columns, rows, { caption } = {}) {
  const head = h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : c.class },
    c.label)));
  const body = rows.map((row) => h("tr", {}, columns.map((c) =>
    h("td", { class: [c.num ? "num" : "", c.class || ""].join(" ").trim() || null }, c.cell(row)))));
  return h("div", { class: "table-wrap" },
    h("table", { class: "index" }, caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      h("thead", {}, head), h("tbody", {}, body)));
}

// -- forms ----------------------------------------------------------------------------------
let fieldSeq = 0;

// A labelled control with help text and a slot for its inline error. `name` is the API field
// path the error details use ("quiet_hours.start").
export function field(labelText, control, { help, name } = {}) {
  const id = control.id || `f-${++fieldSeq}`;
  control.id = id;
  if (name) control.dataset.field = name;
  const helpEl = help ? h("div", { class: "help", id: id + "-help" }, help) : null;
  if (helpEl) control.setAttribute("aria-describedby", helpEl.id);
  const error = h("div", { class: "field-error", id: id + "-error", hidden: true });
  return h("div", { class: "field" }, h("label", { for: id }, labelText), control, helpEl, error);
}

export function checkbox(labelText, attrs = {}) {
  const id = attrs.id || `f-${++fieldSeq}`;
  return h("label", { class: "check", for: id }, h("input", { type: "checkbox", id, ...attrs }),
           h("span", {}, labelText));
}

export function radio(labelText, attrs = {}) {
  const id = attrs.id || `f-${++fieldSeq}`;
  return h("label", { class: "check", for: id }, h("input", { type: "radio", id, ...attrs }),
           h("span", {}, labelText));
}

export function clearErrors(root) {
  for (const el of $$("[aria-invalid=true]", root)) el.removeAttribute("aria-invalid");
  for (const el of $$(".field-error", root)) { el.hidden = true; el.textContent = ""; }
}

// details: {"field.path": "message"} or marshmallow's {"json": {"field": ["message"]}}.
// Returns how many messages found a field; the rest are toasted.
export function showErrors(root, details) {
  clearErrors(root);
  const flat = flatten(details || {});
  let shown = 0;
  let first = null;
  for (const [path, message] of Object.entries(flat)) {
    const control = root.querySelector(`[data-field="${CSS.escape(path)}"]`);
    if (!control) { toast(message, { error: true }); continue; }
    control.setAttribute("aria-invalid", "true");
    const error = document.getElementById(control.id + "-error");
    if (error) {
      error.textContent = message;
      error.hidden = false;
      const described = (control.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      if (!described.includes(error.id)) control.setAttribute("aria-describedby", [...described, error.id].join(" "));
    }
    first = first || control;
    shown++;
  }
  if (first) first.focus();
  return shown;
}

function flatten(details, prefix = "") {
  const out = {};
  for (const [key, value] of Object.entries(details)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (key === "json" && !prefix && value && typeof value === "object" && !Array.isArray(value)) {
      Object.assign(out, flatten(value));
    } else if (Array.isArray(value)) {
      if (value.every((v) => typeof v === "string")) out[path] = value.join(" ");
      else value.forEach((v, i) => Object.assign(out, typeof v === "object" ? flatten(v, `${path}.${i}`) : { [`${path}.${i}`]: String(v) }));
    } else if (value && typeof value === "object") Object.assign(out, flatten(value, path));
    else out[path] = String(value);
  }
  return out;
}

// Disable a button while `work` runs, so a double click cannot send twice.
export async function busy(button, work) {
  if (button.disabled) return undefined;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

// Today in the shop's time zone, as YYYY-MM-DD.
export function shopToday(offsetDays = 0) {
  const zone = document.body.dataset.timezone || "UTC";
  const date = new Date(Date.now() + offsetDays * 86400000);
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit",
    day: "2-digit" }).format(date);
}
