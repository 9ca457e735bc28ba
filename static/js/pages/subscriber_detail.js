// One subscriber: profile, the consent ledger (evidence included), messages, manual unsubscribe.
import { api, confirmModal, page, toast } from "../bridge.js";
import { $, badge, busy, dateTime, emptyState, h, humanize, link, load, money, number, replace,
         table } from "../ui.js";

const GOOD = new Set(["confirmed", "resubscribed", "subscribed"]);
const BAD = new Set(["opted_out", "unsubscribed", "redacted"]);

function render(sub) {
  const title = sub.phone || "Redacted subscriber";
  $("#page-title").textContent = title;
  document.title = `${title} · Tidings`;
  replace($("#title-badges"), badge(sub.status));
  const name = [sub.first_name, sub.last_name].filter(Boolean).join(" ");
  replace($("#profile"), h("dl", { class: "facts" },
    h("dt", {}, "Name"), h("dd", {}, name || "—"),
    h("dt", {}, "Email"), h("dd", {}, sub.email || "—"),
    h("dt", {}, "Source"), h("dd", {}, humanize(sub.source)),
    h("dt", {}, "Country"), h("dd", {}, [sub.country, sub.region].filter(Boolean).join(", ") || "—"),
    h("dt", {}, "Time zone"), h("dd", {}, (sub.timezone || "—").replace(/,/g, ", ")),
    h("dt", {}, "Subscribed"), h("dd", {}, dateTime(sub.subscribed_at)),
    h("dt", {}, "Orders"), h("dd", {}, `${number(sub.orders_count)} · ${money(sub.total_spent)}`),
    h("dt", {}, "Last order"), h("dd", {}, dateTime(sub.last_order_at)),
    h("dt", {}, "Last click"), h("dd", {}, dateTime(sub.last_click_at)),
    h("dt", {}, "Messages"), h("dd", {}, number(sub.messages_received))));

  const events = sub.consent_events || [];
  replace($("#consent"), events.length ? h("ol", { class: "timeline" }, events.map((e) =>
    h("li", { class: GOOD.has(e.kind) ? "good" : BAD.has(e.kind) ? "bad" : "" },
      h("div", { class: "row between" }, h("strong", {}, humanize(e.kind)),
        h("span", { class: "muted" }, dateTime(e.occurred_at))),
      h("div", { class: "muted" }, `From ${humanize(e.source)}` + (e.opt_in_level ? ` · ${humanize(e.opt_in_level)}` : "")),
      e.note ? h("div", {}, e.note) : null,
      (e.consent_text || e.evidence_id || e.ip || e.page_url) ? h("details", {},
        h("summary", {}, "Evidence"),
        h("dl", { class: "facts", style: "margin-top:.375rem" },
          e.consent_text ? [h("dt", {}, "Text shown"), h("dd", {}, e.consent_text)] : null,
          e.page_url ? [h("dt", {}, "Page"), h("dd", {}, e.page_url)] : null,
          e.ip ? [h("dt", {}, "IP"), h("dd", {}, e.ip)] : null,
          e.user_agent ? [h("dt", {}, "Browser"), h("dd", {}, e.user_agent)] : null,
          e.evidence_id ? [h("dt", {}, "Evidence id"), h("dd", { class: "mono" }, e.evidence_id)] : null)) : null)))
    : emptyState({ title: "No consent recorded", text: "Consent events appear here as they happen." }));

  const messages = sub.messages || [];
  const box = $("#messages");
  box.style.padding = messages.length ? "0" : "1rem";
  replace(box, messages.length ? table([
    { label: "Message", class: "clip", cell: (m) => m.body || h("span", { class: "subdued" }, "(not rendered yet)") },
    { label: "Kind", cell: (m) => m.campaign_id ? link(`/app/campaigns/${m.campaign_id}`, "Campaign") : humanize(m.kind) },
    { label: "Status", cell: (m) => badge(m.status, m.skip_reason ? `Skipped: ${humanize(m.skip_reason)}` : undefined) },
    { label: "Sent", cell: (m) => dateTime(m.sent_at || m.due_at) },
  ], messages, { caption: "Messages" }) : h("p", { class: "muted" }, "No messages yet."));

  $("#unsubscribe").hidden = sub.status === "unsubscribed";
}

async function refresh() {
  const sub = await load($("#profile"), () => api(`/api/subscribers/${page.subscriberId}`), { lines: 5 });
  if (sub) render(sub);
  else { replace($("#consent"), ""); replace($("#messages"), ""); }
  return sub;
}

$("#unsubscribe").addEventListener("click", (event) => busy(event.currentTarget, async () => {
  const ok = await confirmModal({
    title: "Unsubscribe this number?",
    body: "They will get no more marketing texts and no confirmation text is sent. This is recorded in their consent history; only they can subscribe again.",
    confirmLabel: "Unsubscribe", destructive: true });
  if (!ok) return;
  try {
    const sub = await api(`/api/subscribers/${page.subscriberId}/unsubscribe`, { method: "POST" });
    render(sub);
    toast("Unsubscribed");
  } catch (error) {
    toast(error.message, { error: true });
  }
}));

refresh();
