// Campaigns: list by status with only the actions each status allows.
import { api, appUrl, confirmModal, toast } from "../bridge.js";
import { $, $$, badge, dateTime, emptyState, h, link, load, money, number, replace, table } from "../ui.js";

let status = "";
let rows = [];
let cursor = null;

function when(c) {
  if (c.status === "sent" || c.status === "cancelled") return dateTime(c.started_at || c.send_at);
  if (c.status === "sending") return `Started ${dateTime(c.started_at)}`;
  if (c.send_at) return (c.status === "scheduled" ? "" : "Planned ") + dateTime(c.send_at) + (c.local_time ? " (local time)" : "");
  return "Not scheduled";
}

async function run(action, c, body, message) {
  try {
    await api(`/api/campaigns/${c.id}/${action}`, { method: "POST", body });
    toast(message);
  } catch (error) {
    toast(error.message, { error: true });
  }
  refresh();
}

async function remove(c) {
  if (!await confirmModal({ title: `Delete “${c.name}”?`, destructive: true, confirmLabel: "Delete campaign",
      body: "The campaign and its text are deleted for good. This cannot be undone." })) return;
  try {
    await api(`/api/campaigns/${c.id}`, { method: "DELETE", query: { confirm: "true" } });
    toast("Campaign deleted");
  } catch (error) { toast(error.message, { error: true }); }
  refresh();
}

async function end(c) {
  if (!await confirmModal({ title: `End “${c.name}”?`, destructive: true, confirmLabel: "End campaign",
      body: "No more texts leave for this campaign. Texts already sent stay sent and counted." })) return;
  run("end", c, undefined, "Campaign ended");
}

function onOff(c) {
  const id = `switch-${c.id}`;
  const box = h("input", { type: "checkbox", id, checked: c.status === "scheduled" });
  box.addEventListener("change", () => (box.checked
    ? run("schedule", c, {}, "Campaign scheduled")
    : run("unschedule", c, undefined, "Campaign switched off (back to draft)")));
  return h("label", { class: "switch", for: id }, box, h("span", {}, c.status === "scheduled" ? "On" : "Off"),
           h("span", { class: "visually-hidden" }, ` ${c.name} scheduled`));
}

function actions(c) {
  const named = (text) => [text, h("span", { class: "visually-hidden" }, ` ${c.name}`)];
  const items = [];
  if (c.status === "scheduled" || (c.status === "draft" && c.send_at)) items.push(onOff(c));
  if (c.status === "draft" || c.status === "scheduled") {
    items.push(h("a", { class: "btn btn-sm", href: appUrl(`/app/campaigns/${c.id}/edit`) }, named("Edit")));
    if (c.status === "draft") items.push(h("a", { class: "btn btn-sm", href: appUrl(`/app/campaigns/${c.id}/review`) }, named("Review")));
    items.push(h("button", { type: "button", class: "btn btn-sm btn-plain critical", onclick: () => remove(c) }, named("Delete")));
  } else {
    items.push(h("a", { class: "btn btn-sm", href: appUrl(`/app/campaigns/${c.id}`) }, named("View")));
    if (c.status === "sending") items.push(h("button", { type: "button", class: "btn btn-sm btn-critical", onclick: () => end(c) }, named("End campaign")));
  }
  return h("div", { class: "btn-group", style: "justify-content:flex-end;align-items:center" }, items);
}

function render() {
  const list = $("#list");
  if (!rows.length) {
    list.style.padding = "1rem";
    replace(list, status ? emptyState({ title: "No campaigns here", text: "Campaigns with this status will show up here." })
      : emptyState({ title: "Send your first campaign",
          text: "Write a text, choose who gets it, add a discount if you like, and see exactly what it costs before anything is sent.",
          action: h("a", { class: "btn btn-primary", href: appUrl("/app/campaigns/new") }, "Create campaign") }));
    return;
  }
  list.style.padding = "0";
  replace(list, table([
    { label: "Campaign", class: "primary-cell", cell: (c) => link(c.status === "draft" ? `/app/campaigns/${c.id}/edit` : `/app/campaigns/${c.id}`, c.name) },
    { label: "Status", cell: (c) => badge(c.status, c.status_label) },
    { label: "When", cell: when },
    { label: "Recipients", num: true, cell: (c) => (c.recipients_count ? number(c.recipients_count) : "—") },
    { label: "Est. cost", num: true, cell: (c) => (c.estimated_cost ? money(c.estimated_cost) : "—") },
    { label: "Actions", class: "actions", cell: actions },
  ], rows, { caption: "Campaigns" }));
}

async function refresh(append = false) {
  const query = { status, limit: 50, cursor: append ? cursor : undefined };
  const page = append ? await api("/api/campaigns", { query })
                      : await load($("#list"), () => api("/api/campaigns", { query }), { lines: 4 });
  if (!page) return;
  rows = append ? rows.concat(page.items) : page.items;
  cursor = page.next_cursor;
  $("#more").hidden = !cursor;
  render();
}

for (const tab of $$("#status-tabs button")) {
  tab.addEventListener("click", () => {
    for (const other of $$("#status-tabs button")) other.setAttribute("aria-selected", String(other === tab));
    status = tab.dataset.status;
    refresh();
  });
}
$("#more-btn").addEventListener("click", () => refresh(true));
refresh();
