// Development outbox: what the dev provider "sent", and buttons that play what happens next.
import { api, confirmModal, toast } from "../bridge.js";
import { $, badge, busy, clearErrors, dateTime, emptyState, field, h, link, load, replace,
         showErrors, table } from "../ui.js";

const REFRESH_MS = 3000;
let rows = [];
let cursor = null;

async function act(button, sid, action, body, done) {
  await busy(button, async () => {
    try {
      await api(`/api/outbox/${sid}/${action}`, { method: "POST", body });
      toast(done);
      await refresh();
    } catch (error) {
      toast(error.message, { error: true });
    }
  });
}

async function reply(button, row) {
  const box = h("input", { type: "text", value: "STOP", maxlength: 160 });
  const content = h("div", { class: "stack" },
    h("p", {}, `Reply from ${row.to} to the shop.`), field("Reply text", box),
    h("div", { class: "row" }, ["STOP", "HELP", "Y", "START"].map((word) =>
      h("button", { type: "button", class: "btn btn-sm", onclick: () => { box.value = word; } }, word))));
  if (!await confirmModal({ title: "Reply as the subscriber", body: content, confirmLabel: "Send reply" })) return;
  const text = box.value.trim();
  if (text) await act(button, row.sid, "reply", { body: text }, `Replied “${text}”`);
}

function actions(row) {
  const label = (verb) => h("span", { class: "visually-hidden" }, ` ${verb} to ${row.to}`);
  const btn = (text, verb, onclick, extra = {}) =>
    h("button", { type: "button", class: "btn btn-sm", onclick, ...extra }, text, label(verb));
  return h("div", { class: "btn-group" },
    btn("Delivered", "mark message", (e) => act(e.currentTarget, row.sid, "play", { status: "delivered" }, "Played: delivered")),
    btn("Failed", "mark message", (e) => act(e.currentTarget, row.sid, "play", { status: "failed" }, "Played: failed")),
    btn("Click", "tap link in message", (e) => act(e.currentTarget, row.sid, "click", {}, "Played: link tapped"),
        { disabled: !row.links.length, title: row.links.length ? row.links[0].url : "No link in this text" }),
    btn("Reply", "reply", (e) => reply(e.currentTarget, row)));
}

function render() {
  const list = $("#list");
  if (!rows.length) {
    list.style.padding = "1rem";
    replace(list, emptyState({ title: "Nothing sent yet",
      text: "Send a campaign, turn on a flow, or text JOIN from a number below; the texts appear here." }));
    return;
  }
  list.style.padding = "0";
  replace(list, table([
    { label: "To", class: "nowrap", cell: (r) => r.message ? link(`/app/subscribers/${r.message.subscriber_id}`, r.to) : r.to },
    { label: "Text", cell: (r) => h("div", { style: "max-width:26rem;white-space:pre-wrap;overflow-wrap:anywhere" }, r.body) },
    { label: "Status", cell: (r) => h("div", { class: "stack-sm" }, badge(r.status),
        r.message && r.message.campaign_id ? link(`/app/campaigns/${r.message.campaign_id}`, "Campaign") : null) },
    { label: "Sent", class: "nowrap", cell: (r) => dateTime(r.created_at) },
    { label: "Play", class: "actions", cell: actions },
  ], rows, { caption: "Texts sent by the outbox" }));
}

// Re-reads the newest rows, as many as are shown (up to a page of 200), so the periodic
// refresh does not drop rows "Load more" brought in.
async function refresh() {
  const limit = Math.min(200, Math.max(50, rows.length));
  const page = await api("/api/outbox", { query: { limit } });
  rows = page.items;
  cursor = page.next_cursor;
  $("#more").hidden = !cursor;
  render();
}

$("#more-btn").addEventListener("click", async () => {
  const page = await api("/api/outbox", { query: { limit: 50, cursor } });
  rows = rows.concat(page.items);
  cursor = page.next_cursor;
  $("#more").hidden = !cursor;
  render();
});
$("#refresh").addEventListener("click", (e) => busy(e.currentTarget, refresh));
$("#inbound").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  busy($("#in-send"), async () => {
    clearErrors(form);
    try {
      await api("/api/outbox/inbound", { method: "POST", body: { from: form.from.value, body: form.body.value } });
      toast("Text delivered to the shop");
      refresh();
    } catch (error) {
      if (!error.details || !showErrors(form, error.details)) toast(error.message, { error: true });
    }
  });
});
setInterval(() => {
  if ($("#auto").checked && !document.hidden && !document.querySelector("dialog[open], [aria-busy=true]")) {
    refresh().catch(() => {});
  }
}, REFRESH_MS);
load($("#list"), refresh);
