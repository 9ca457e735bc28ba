// Subscribers: growth chart, counts, search with filters and keyset paging.
import { api, appUrl } from "../bridge.js";
import { chart, legend, shortDate } from "../chart.js";
import { $, $$, badge, dateOnly, emptyState, h, link, load, number, replace, table } from "../ui.js";

let status = "";
let cursor = null;
let rows = [];

function query() {
  const form = $("#filters");
  const text = form.q.value.trim();
  const q = { status, source: form.source.value, created_from: form.created_from.value,
              created_to: form.created_to.value, limit: 50 };
  if (text.includes("@")) q.email = text;
  else if (text && /^[\d\s()+.-]+$/.test(text)) q.phone = text;
  else if (text) q.name = text;
  return q;
}

function name(s) {
  return [s.first_name, s.last_name].filter(Boolean).join(" ") || "—";
}

function render() {
  const list = $("#list");
  if (!rows.length) {
    const filtered = Object.entries(query()).some(([k, v]) => k !== "limit" && v);
    replace(list, filtered
      ? emptyState({ title: "No subscribers match", text: "Try another search or clear the filters." })
      : emptyState({ title: "Collect your first subscribers",
          text: "Turn on the sign-up pop-up in your theme, ask for consent at checkout, or import a list you already have consent for.",
          action: h("a", { class: "btn btn-primary", href: appUrl("/app/subscribers/import") }, "Import subscribers") }));
    return;
  }
  replace(list, table([
    { label: "Phone", class: "primary-cell", cell: (s) => link(`/app/subscribers/${s.id}`, s.phone || "(redacted)") },
    { label: "Name", cell: name },
    { label: "Status", cell: (s) => badge(s.status) },
    { label: "Source", cell: (s) => s.source.replace(/_/g, " ") },
    { label: "Orders", num: true, cell: (s) => number(s.orders_count) },
    { label: "Joined", cell: (s) => dateOnly(s.created_at) },
  ], rows, { caption: "Subscribers" }));
}

async function search(append = false) {
  const q = query();
  if (append) q.cursor = cursor;
  const page = append ? await api("/api/subscribers", { query: q })
                      : await load($("#list"), () => api("/api/subscribers", { query: q }), { lines: 5 });
  if (!page) return;
  rows = append ? rows.concat(page.items) : page.items;
  cursor = page.next_cursor;
  $("#more").hidden = !cursor;
  render();
}

async function growth() {
  const [data, counts] = await Promise.all([
    load($("#growth"), () => api("/api/subscribers/growth", { query: { days: 30 } })),
    api("/api/subscribers/counts").catch(() => null),
  ]);
  if (counts) {
    replace($("#counts"), badge("subscribed", `${number(counts.subscribed)} subscribed`),
            badge("pending", `${number(counts.pending)} pending`),
            badge("unsubscribed", `${number(counts.unsubscribed)} unsubscribed`));
  }
  if (!data) return;
  const labels = data.days.map((d) => shortDate(d.date));
  const series = [
    { name: "New", type: "bar", values: data.days.map((d) => d.new) },
    { name: "Unsubscribed", type: "line", alt: true, values: data.days.map((d) => d.unsubscribed) },
  ];
  replace($("#growth"), chart({ labels, series, title: "New subscribers and unsubscribes per day", height: 150,
                                format: (v) => String(Math.round(v)) }), legend(series));
}

for (const tab of $$("#status-tabs button")) {
  tab.addEventListener("click", () => {
    for (const other of $$("#status-tabs button")) other.setAttribute("aria-selected", String(other === tab));
    status = tab.dataset.status;
    search();
  });
}
$("#filters").addEventListener("submit", (event) => { event.preventDefault(); search(); });
$("#more-btn").addEventListener("click", () => search(true));
growth();
search();
