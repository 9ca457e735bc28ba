// Review and send: recipients, cost per country, length and encoding, timing, every warning,
// and an explicit confirmation before anything is sent or scheduled.
import { api, appUrl, confirmModal, navigate, page, toast } from "../bridge.js";
import { phonePreview } from "../editor.js";
import { $, busy, checkbox, dateTime, h, humanize, load, money, number, replace, table } from "../ui.js";

let campaign = null;
let review = null;

function issueBanner(issue, critical) {
  const suggestion = issue.code === "ucs2" && issue.details && issue.details.suggestion;
  return h("div", { class: `banner ${critical ? "banner-critical" : "banner-warning"}`, role: critical ? "alert" : "note" },
    h("div", {}, h("h2", {}, critical ? "Fix before sending" : humanize(issue.code)), h("p", {}, issue.message),
      suggestion && suggestion.text !== undefined && campaign.body ? h("button", { type: "button", class: "btn btn-sm", style: "margin-top:.5rem",
        onclick: (e) => busy(e.currentTarget, async () => {
          await api(`/api/campaigns/${campaign.id}`, { method: "PATCH", body: { body: suggestion.text || suggestion.A } });
          toast("Replaced with GSM characters");
          refresh();
        }) }, "Replace with GSM characters") : null));
}

function render() {
  const r = review;
  const currency = r.currency;
  const blocking = r.blocking || [];
  const warnings = r.warnings || [];
  replace($("#issues"), [...blocking.map((i) => issueBanner(i, true)), ...warnings.map((i) => issueBanner(i, false))],
          (blocking.length || warnings.length) ? h("div", { style: "height:1rem" }) : null);
  replace($("#cost"),
    h("div", { class: "grid" },
      h("div", { class: "metric" }, h("div", { class: "label" }, "Texts to send"), h("div", { class: "value", id: "recipients" }, number(r.recipients))),
      h("div", { class: "metric" }, h("div", { class: "label" }, r.total_is_upper_bound ? "Estimated cost (at most)" : "Estimated cost"),
        h("div", { class: "value", id: "total-cost" }, money(r.total_cost, currency))),
      h("div", { class: "metric" }, h("div", { class: "label" }, "Segments"), h("div", { class: "value" }, number(r.total_segments)))),
    h("dl", { class: "facts", style: "margin-top:1rem" },
      h("dt", {}, "Audience"), h("dd", {}, `${r.segment_name || "Built-in audience"}: ${number(r.audience)} subscribers`),
      h("dt", {}, "Held out"), h("dd", {}, `${number(r.held_out)} (not texted, to measure lift)`),
      h("dt", {}, "Smart sending"), h("dd", {}, `${number(r.smart_sending_skipped)} skipped (texted recently)`),
      h("dt", {}, "Length"), h("dd", {}, Object.entries(r.segments_per_message || {}).map(([seg, n]) => `${number(n)} × ${seg} segment${seg === "1" ? "" : "s"}`).join(", ") || "—"),
      h("dt", {}, "Encoding"), h("dd", {}, Object.entries(r.encodings || {}).map(([enc, n]) => `${enc} ${number(n)}`).join(", ") || "—")),
    (r.per_country || []).length ? table([
      { label: "Country", cell: (c) => c.country },
      { label: "Texts", num: true, cell: (c) => number(c.recipients) },
      { label: "Segments", num: true, cell: (c) => number(c.segments) },
      { label: "Per segment", num: true, cell: (c) => money(c.price_per_segment, currency) },
      { label: "Cost", num: true, cell: (c) => money(c.cost, currency) },
    ], r.per_country || [], { caption: "Cost per country" }) : null,
    r.variants && r.variants.length ? table([
      { label: "Variant", cell: (v) => v.label },
      { label: "Test texts", num: true, cell: (v) => number(v.test_recipients) },
      { label: "Cost if it wins", num: true, cell: (v) => money(v.cost_if_sent_to_all, currency) },
    ], r.variants, { caption: "A/B variants" }) : null);
  replace($("#timing"), h("dl", { class: "facts" },
    h("dt", {}, "Starts"), h("dd", {}, r.starts_at ? `${dateTime(r.starts_at)} (${r.timezone})` : "Right after you confirm"),
    h("dt", {}, "Last text due"), h("dd", {}, r.last_due_at ? dateTime(r.last_due_at) : "—"),
    h("dt", {}, "Waiting for quiet hours"), h("dd", {}, number(r.quiet_hours_delayed)),
    campaign.local_time ? [h("dt", {}, "Local time"), h("dd", {}, "Each subscriber gets it at that time in their zone")] : null));
  const phone = phonePreview(campaign.name);
  phone.show(r.sample || campaign.body);
  replace($("#sample"), phone, h("p", { class: "help", style: "text-align:center" }, "A real recipient's text, with a stand-in code and short link."));

  const scheduled = Boolean(campaign.send_at) && new Date(campaign.send_at) > new Date();
  const verb = scheduled ? "Schedule" : "Send now";
  const consent = checkbox(`I understand this ${scheduled ? "schedules" : "sends"} ${number(r.recipients)} texts costing about ${money(r.total_cost, currency)}.`, { id: "understand" });
  const button = h("button", { type: "button", class: "btn btn-primary", id: "send", disabled: true }, verb);
  const box = consent.querySelector("input");
  box.disabled = !r.can_send;
  box.addEventListener("change", () => { button.disabled = !box.checked || !r.can_send; });
  button.addEventListener("click", () => busy(button, async () => {
    const ok = await confirmModal({ title: `${verb}: ${campaign.name}?`, confirmLabel: verb,
      body: `${number(r.recipients)} texts, about ${money(r.total_cost, currency)}. ${scheduled ? `They start ${dateTime(campaign.send_at)}.` : "Sending starts right away."}` });
    if (!ok) return;
    try {
      await api(`/api/campaigns/${campaign.id}/${scheduled ? "schedule" : "send-now"}`, { method: "POST", body: scheduled ? {} : undefined });
      toast(scheduled ? "Campaign scheduled" : "Sending started");
      navigate(`/app/campaigns/${campaign.id}`);
    } catch (error) {
      toast(error.message, { error: true });
      refresh();
    }
  }));
  replace($("#confirm"),
    r.can_send ? null : h("p", { class: "field-error" }, "This campaign can't be sent until the problems above are fixed."),
    consent, h("div", { class: "card-footer" }, h("a", { class: "btn", href: appUrl(`/app/campaigns/${campaign.id}/edit`) }, "Back to editing"), button));
}

async function refresh() {
  const loaded = await load($("#cost"), () => Promise.all([
    api(`/api/campaigns/${page.campaignId}`), api(`/api/campaigns/${page.campaignId}/review`)]), { lines: 4 });
  if (!loaded) { replace($("#timing"), ""); replace($("#confirm"), ""); replace($("#sample"), ""); return; }
  [campaign, review] = loaded;
  if (!["draft", "scheduled"].includes(campaign.status)) { navigate(`/app/campaigns/${campaign.id}`); return; }
  $("#page-title").textContent = `Review “${campaign.name}”`;
  document.title = `Review ${campaign.name} · Tidings`;
  render();
}

$("#edit-link").href = appUrl(`/app/campaigns/${page.campaignId}/edit`);
refresh();
