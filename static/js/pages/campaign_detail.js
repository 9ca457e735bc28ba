// Campaign detail: live progress while sending (polls /progress), results, per-variant results,
// revenue by reason and the attributed orders; End campaign with a confirmation.
import { api, confirmModal, download, page, toast } from "../bridge.js";
import { $, badge, busy, count, dateTime, emptyState, h, link, load, money, number, percent, replace,
         shopToday, table } from "../ui.js";

const POLL_MS = 1500;
let campaign = null;
let timer = null;

function metric(label, value, detail, id) {
  return h("div", { class: "card metric" }, h("div", { class: "label" }, label),
           h("div", { class: "value", id }, value), detail ? h("div", { class: "detail" }, detail) : null);
}

function renderProgress(p) {
  const done = p.sent + p.failed + p.skipped;
  const share = p.total ? Math.min(1, (p.total - p.pending) / p.total) : (["sent", "cancelled"].includes(p.status) ? 1 : 0);
  const pct = Math.round(share * 100);
  replace($("#progress-note"), p.status === "sending" && p.eta_seconds ? `about ${Math.ceil(p.eta_seconds / 60)} min left` : "");
  replace($("#progress"),
    h("div", { class: "row between", style: "margin-bottom:.5rem" },
      h("strong", { id: "progress-pct" }, `${pct}%`),
      h("span", { class: "muted" }, `${number(p.total - p.pending)} of ${number(p.total)} texts handled · ${number(Math.round(p.rate_per_minute || 0))}/min`)),
    h("div", { class: "progress", role: "progressbar", "aria-label": "Sending progress", "aria-valuemin": "0",
               "aria-valuemax": "100", "aria-valuenow": String(pct) }, h("span", { style: `width:${pct}%` })),
    h("div", { class: "row", style: "margin-top:.75rem" },
      badge("sent", `${number(p.sent)} sent`), badge("delivered", `${number(p.delivered)} delivered`),
      badge("failed", `${number(p.failed)} failed`), badge("skipped", `${number(p.skipped)} skipped`),
      p.held_out ? badge("held_out", `${number(p.held_out)} held out`) : null,
      p.waiting_for_winner ? badge("scheduled", `A/B winner ${p.ab_decide_at ? "at " + dateTime(p.ab_decide_at) : "pending"}`) : null),
    done === 0 && p.status === "scheduled" ? h("p", { class: "muted" }, `Scheduled for ${dateTime(campaign.send_at)}.`) : null);
}

function renderStats(s) {
  replace($("#metrics"),
    metric("Attributed revenue", money(s.revenue), `${count(s.orders, "order", "orders")} · AOV ${money(s.aov)}`, "m-revenue"),
    metric("Click rate", percent(s.ctr), `${count(s.unique_clicks, "person", "people")} clicked · ${count(s.clicks, "click", "clicks")}`, "m-ctr"),
    metric("Delivered", percent(s.delivery_rate), `${number(s.delivered)} of ${number(s.sent)} sent`, "m-delivered"),
    metric("ROI", s.roi === null ? "—" : percent(s.roi, 0), `Spend ${money(s.spend)} · ${s.roi_formula || "roi = (revenue - spend) / spend"}`, "m-roi"));
  const reasons = s.revenue_by_reason || {};
  replace($("#reasons"), h("dl", { class: "facts" },
    h("dt", {}, "Discount code used"), h("dd", {}, `${money(reasons.discount)} · ${count((s.orders_by_reason || {}).discount, "order", "orders")}`),
    h("dt", {}, "Clicked a link"), h("dd", {}, `${money(reasons.click)} · ${count((s.orders_by_reason || {}).click, "order", "orders")}`),
    h("dt", {}, "Received (view)"), h("dd", {}, `${money(reasons.view)} · ${count((s.orders_by_reason || {}).view, "order", "orders")}`),
    h("dt", {}, "Opt-outs"), h("dd", {}, `${number(s.opt_outs)} (${percent(s.opt_out_rate)})`)));
}

function renderVariants(variants) {
  const rows = (variants || []).filter((v) => v.label);
  $("#variants-card").hidden = !rows.length;
  if (!rows.length) return;
  replace($("#variants"), table([
    { label: "Variant", cell: (v) => [v.label, campaign.winner_variant_id === v.variant_id ? [" ", badge("success", "Winner")] : null] },
    { label: "Sent", num: true, cell: (v) => number(v.sent) },
    { label: "Click rate", num: true, cell: (v) => percent(v.ctr) },
    { label: "Orders", num: true, cell: (v) => number(v.orders) },
    { label: "Revenue", num: true, cell: (v) => money(v.revenue) },
  ], rows, { caption: "Results per variant" }));
}

// One row per destination: the texts that carried it, clicks, and who clicked.
function renderLinks(links) {
  $("#links-card").hidden = !links.length;
  if (!links.length) return;
  replace($("#links"), table([
    { label: "Link", class: "clip", cell: (l) => h("span", { title: l.url }, l.url) },
    { label: "Texts", num: true, cell: (l) => number(l.texts) },
    { label: "Clicks", num: true, cell: (l) => number(l.clicks) },
    { label: "People", num: true, cell: (l) => number(l.unique_clicks) },
    { label: "Click rate", num: true, cell: (l) => percent(l.ctr) },
  ], links, { caption: "Results per link" }));
}

// Attributed orders from /api/analytics/orders (test and cancelled ones left out, as in the
// stats), newest first; "Load more" appends the next page.
let orderRows = [], orderQuery = null, orderCursor = null;

function renderOrders() {
  const el = $("#orders");
  if (!orderRows.length) { replace(el, h("p", { class: "muted" }, "No attributed orders yet.")); return; }
  el.style.padding = "0";
  replace(el, table([
    { label: "Order", cell: (o) => o.name || String(o.shopify_order_id) },
    { label: "Placed", cell: (o) => dateTime(o.ordered_at) },
    { label: "Why", cell: (o) => badge(o.reason === "discount" ? "success" : "info", o.reason === "discount" ? "Discount code" : o.reason === "click" ? "Clicked" : "View-through") },
    { label: "Customer", cell: (o) => (o.subscriber_id ? link(`/app/subscribers/${o.subscriber_id}`, "Subscriber") : "—") },
    { label: "Net revenue", num: true, cell: (o) => money(o.net_total, o.currency || undefined) },
  ], orderRows, { caption: "Attributed orders" }));
}

async function orders(more = false) {
  const el = $("#orders");
  if (!campaign.started_at) {
    replace(el, h("p", { class: "muted" }, "Orders attributed to this campaign appear here after it is sent."));
    return;
  }
  if (!more) {
    // A day early: the start's UTC date can be the day after the shop's local date.
    const since = new Date(Date.parse(campaign.started_at) - 86400000).toISOString().slice(0, 10);
    orderQuery = { campaign_id: campaign.id, since: since < shopToday(-365) ? shopToday(-365) : since, until: shopToday(), limit: 25 };
  }
  const query = { ...orderQuery, cursor: more ? orderCursor : undefined };
  const next = more ? await api("/api/analytics/orders", { query }).catch((error) => toast(error.message, { error: true }))
                    : await load(el, () => api("/api/analytics/orders", { query }));
  if (!next) return;
  orderRows = more ? orderRows.concat(next.items) : next.items;
  orderCursor = next.next_cursor;
  $("#orders-more").hidden = !orderCursor;
  renderOrders();
}

function renderCampaign() {
  $("#page-title").textContent = campaign.name;
  document.title = `${campaign.name} · Tidings`;
  replace($("#title-badges"), badge(campaign.status, campaign.status_label));
  $("#end").hidden = campaign.status !== "sending";
  $("#export").hidden = !campaign.started_at;
  replace($("#text"), h("div", { class: "bubble", style: "max-width:100%" }, campaign.body),
    h("dl", { class: "facts", style: "margin-top:.75rem" },
      h("dt", {}, "Discount"), h("dd", {}, campaign.discount_mode === "none" ? "None" : `${campaign.discount_mode === "unique" ? "Unique codes" : "Shared code"}, ${campaign.discount_config.value}${campaign.discount_config.value_type === "percentage" ? "%" : " off"}`),
      h("dt", {}, "Started"), h("dd", {}, dateTime(campaign.started_at)),
      h("dt", {}, "Finished"), h("dd", {}, dateTime(campaign.finished_at || campaign.cancelled_at)),
      campaign.status_reason ? [h("dt", {}, "Note"), h("dd", {}, campaign.status_reason)] : null));
}

async function poll() {
  clearTimeout(timer);
  try {
    const p = await api(`/api/campaigns/${page.campaignId}/progress`);
    renderProgress(p);
    if (p.status !== campaign.status) {
      campaign = await api(`/api/campaigns/${page.campaignId}`);
      renderCampaign();
    }
    if (p.stats) renderStats(p.stats);
    if (["sending", "scheduled"].includes(p.status)) timer = setTimeout(poll, POLL_MS);
    else { results(); orders(); }
  } catch (error) {
    toast(error.message, { error: true });
    timer = setTimeout(poll, POLL_MS * 4);
  }
}

async function results() {
  try {
    const [r, links] = await Promise.all([api(`/api/campaigns/${page.campaignId}/stats`),
      api(`/api/analytics/campaigns/${page.campaignId}/links`)]);
    renderStats(r.campaign);
    renderVariants(r.variants);
    renderLinks(links);
  } catch (error) {
    replace($("#metrics"), h("div", { class: "card" }, error.message));
  }
}

$("#end").addEventListener("click", (e) => busy(e.currentTarget, async () => {
  if (!await confirmModal({ title: "End this campaign?", destructive: true, confirmLabel: "End campaign",
      body: "No more texts leave for this campaign. Texts already sent stay sent and counted." })) return;
  try {
    campaign = await api(`/api/campaigns/${campaign.id}/end`, { method: "POST" });
    toast("Campaign ended");
    renderCampaign();
    poll();
  } catch (error) { toast(error.message, { error: true }); }
}));
$("#orders-more-btn").addEventListener("click", (e) => busy(e.currentTarget, () => orders(true)));
$("#export").addEventListener("click", (e) => busy(e.currentTarget, () =>
  download(`/api/analytics/campaigns/${campaign.id}/results.csv`, `campaign-${campaign.id}-results.csv`)
    .catch((error) => toast(error.message, { error: true }))));

(async () => {
  campaign = await load($("#progress"), () => api(`/api/campaigns/${page.campaignId}`));
  if (!campaign) { replace($("#orders"), ""); replace($("#text"), ""); return; }
  renderCampaign();
  if (campaign.status === "draft") {
    replace($("#progress"), emptyState({ title: "Not sent yet", text: "Review the campaign to see its cost and send it.",
      action: h("a", { class: "btn btn-primary", href: `/app/campaigns/${campaign.id}/review${location.search}` }, "Review and send") }));
    replace($("#orders"), h("p", { class: "muted" }, "Orders appear here after the send."));
    return;
  }
  // Orders are read once the send is over (poll() calls orders()); until then, say so.
  if (["scheduled", "sending"].includes(campaign.status)) {
    replace($("#orders"), h("p", { class: "muted" }, "Attributed orders appear here after the send."));
  }
  await poll();
  if (campaign.status === "sending") results();
})();
