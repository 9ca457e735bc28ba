// Dashboard: attributed revenue (split by reason), ROI with its formula, subscribers and their
// growth, recent campaigns, over a period the merchant picks.
import { api, appUrl } from "../bridge.js";
import { chart, legend, shortDate } from "../chart.js";
import { $, $$, badge, count, dateTime, emptyState, errorState, h, link, load, money, number, percent,
         replace, shopToday, table } from "../ui.js";

const REASONS = [["discount", "Discount code used"], ["click", "Clicked a link"],
                 ["view", "Received (view-through)"]];

function metric(label, value, detail) {
  return h("div", { class: "card metric" }, h("div", { class: "label" }, label),
           h("div", { class: "value" }, value), detail ? h("div", { class: "detail" }, detail) : null);
}

async function refresh(days) {
  const query = { since: shopToday(-(days - 1)), until: shopToday() };
  $("#period-label").textContent = `Last ${days} days (${query.since} to ${query.until}, shop time)`;
  const metrics = $("#metrics");
  // All three requests at once: the page is ready when the slowest answers, not their sum.
  const seriesRequest = api("/api/analytics/timeseries", { query });
  seriesRequest.catch(() => {}); // handled below by load()
  const countsRequest = api("/api/subscribers/counts").catch(() => null);
  const stats = await load(metrics, () => api("/api/analytics/shop", { query }), { lines: 2 });
  const counts = await countsRequest;
  if (stats) {
    const subs = stats.subscribers || {};
    replace(metrics,
      metric("Attributed revenue", money(stats.revenue), `${number(stats.orders)} orders from texts`),
      metric("Return on spend", stats.roi === null ? "—" : percent(stats.roi, 0),
             `Spend ${money(stats.spend)}`),
      metric("Messages sent", number(stats.sent),
             `${percent(stats.delivery_rate)} delivered · ${percent(stats.ctr)} click rate`),
      metric("Subscribers", number(counts ? counts.subscribed : subs.subscribed_now),
             `+${number(subs.new)} new · ${number(subs.unsubscribes)} unsubscribed`));
    renderSplit(stats);
    renderRoi(stats);
  } else {
    replace($("#revenue-split"), errorState({ message: "Figures are unavailable." }));
    replace($("#roi"), "—");
  }
  const series = await load($("#revenue-chart"), () => seriesRequest);
  if (series) renderSeries(series);
  else replace($("#growth-chart"), errorState({ message: "The daily figures are unavailable." }));
}

function renderSplit(stats) {
  const total = Number(stats.revenue) || 0;
  const rows = REASONS.map(([key, label]) => {
    const amount = Number((stats.revenue_by_reason || {})[key] || 0);
    const share = total ? amount / total : 0;
    return h("div", { class: "stack-sm", style: "margin-bottom:.75rem" },
      h("div", { class: "row between" }, h("span", {}, label),
        h("strong", {}, money(amount))),
      h("div", { class: "progress", role: "img", "aria-label": `${label}: ${Math.round(share * 100)}% of revenue` },
        h("span", { style: `width:${(share * 100).toFixed(1)}%` })),
      h("div", { class: "help" }, count((stats.orders_by_reason || {})[key], "order", "orders")));
  });
  replace($("#revenue-split"), total ? rows : emptyState({
    title: "No attributed orders yet",
    text: "Orders placed within the attribution window after a text show up here, split by why they count.",
    action: h("a", { class: "btn", href: appUrl("/app/settings") }, "Check attribution settings") }));
}

function renderRoi(stats) {
  replace($("#roi"),
    h("dl", { class: "facts" },
      h("dt", {}, "Revenue"), h("dd", {}, money(stats.revenue)),
      h("dt", {}, "Spend"), h("dd", {}, money(stats.spend)),
      h("dt", {}, "ROI"), h("dd", {}, h("strong", {}, stats.roi === null ? "—" : percent(stats.roi, 0))),
      h("dt", {}, "Conversion"), h("dd", {}, percent(stats.conversion_rate))));
}

function renderSeries(series) {
  const labels = series.points.map((p) => shortDate(p.date));
  const revenue = [{ name: "revenue", type: "bar", values: series.points.map((p) => Number(p.revenue)) }];
  replace($("#revenue-chart"),
    chart({ labels, series: revenue, title: "Attributed revenue per day", format: (v) => money(v).replace(/\.00$/, "") }));
  const growth = [
    { name: "New subscribers", type: "line", values: series.points.map((p) => p.new_subscribers || 0) },
    { name: "Unsubscribes", type: "line", alt: true, values: series.points.map((p) => p.unsubscribes || 0) },
  ];
  replace($("#growth-chart"), chart({ labels, series: growth, title: "New subscribers and unsubscribes per day",
                                      format: (v) => String(Math.round(v)) }), legend(growth));
}

async function recentCampaigns() {
  const el = $("#recent");
  const data = await load(el, () => api("/api/campaigns", { query: { limit: 5 } }));
  if (!data) return;
  const items = data.items || data;
  if (!items.length) {
    replace(el, emptyState({ title: "Send your first campaign",
      text: "Write a text, pick who gets it and see the cost before anything is sent.",
      action: h("a", { class: "btn btn-primary", href: appUrl("/app/campaigns/new") }, "Create campaign") }));
    return;
  }
  el.style.padding = "0";
  replace(el, table([
    { label: "Campaign", cell: (c) => link(`/app/campaigns/${c.id}`, c.name), class: "primary-cell" },
    { label: "Status", cell: (c) => badge(c.status) },
    { label: "Sent", cell: (c) => dateTime(c.started_at || c.send_at) },
    { label: "Recipients", num: true, cell: (c) => number(c.recipients_count) },
  ], items, { caption: "Recent campaigns" }));
}

for (const button of $$("#period button")) {
  button.addEventListener("click", () => {
    for (const other of $$("#period button")) other.setAttribute("aria-pressed", String(other === button));
    refresh(Number(button.dataset.days));
  });
}
refresh(30);
recentCampaigns();
