// Segments: saved segments with their live counts, and the built-ins.
import { api, appUrl, confirmModal, toast } from "../bridge.js";
import { $, dateOnly, emptyState, h, link, load, number, replace, table } from "../ui.js";

function countCell(promise) {
  const cell = h("span", { class: "subdued" }, "…");
  promise.then((r) => { cell.textContent = number(r.count); cell.className = ""; })
         .catch(() => { cell.textContent = "—"; });
  return cell;
}

async function remove(segment) {
  const ok = await confirmModal({ title: `Delete “${segment.name}”?`, destructive: true,
    body: "Draft campaigns that use it lose their audience choice. Campaigns already sent keep their results.",
    confirmLabel: "Delete segment" });
  if (!ok) return;
  try {
    await api(`/api/segments/${segment.id}`, { method: "DELETE" });
    toast("Segment deleted");
    saved();
  } catch (error) {
    toast(error.message, { error: true });
  }
}

async function saved() {
  const el = $("#list");
  const data = await load(el, () => api("/api/segments", { query: { limit: 100 } }));
  if (!data) return;
  if (!data.items.length) {
    replace(el, emptyState({ title: "Group subscribers by what they do",
      text: "Build a segment from orders, spend, clicks, sign-up source or country, and send campaigns to just those people.",
      action: h("a", { class: "btn btn-primary", href: appUrl("/app/segments/new") }, "Create segment") }));
    return;
  }
  el.style.padding = "0";
  replace(el, table([
    { label: "Name", class: "primary-cell", cell: (s) => link(`/app/segments/${s.id}`, s.name) },
    { label: "Subscribers", num: true, cell: (s) => countCell(api(`/api/segments/${s.id}/count`)) },
    { label: "Updated", cell: (s) => dateOnly(s.updated_at) },
    { label: "Actions", class: "actions", cell: (s) => h("div", { class: "btn-group" },
        h("a", { class: "btn btn-sm", href: appUrl(`/app/segments/${s.id}`) }, "Edit",
          h("span", { class: "visually-hidden" }, ` ${s.name}`)),
        h("button", { type: "button", class: "btn btn-sm btn-plain critical", onclick: () => remove(s) },
          "Delete", h("span", { class: "visually-hidden" }, ` ${s.name}`))) },
  ], data.items, { caption: "Saved segments" }));
}

async function builtins() {
  const el = $("#builtins");
  const list = await load(el, () => api("/api/segments/builtins"));
  if (!list) return;
  el.style.padding = "0";
  replace(el, table([
    { label: "Name", class: "primary-cell", cell: (b) => b.title },
    { label: "Who", cell: (b) => b.description },
    { label: "Subscribers", num: true, cell: (b) => countCell(api("/api/segments/count",
        { method: "POST", body: { rules: { builtin: b.name } } })) },
  ], list, { caption: "Built-in segments" }));
}

saved();
builtins();
