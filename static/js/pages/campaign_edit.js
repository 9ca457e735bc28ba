// Campaign editor: name, message (live counter, UCS-2 help, inserts, phone preview), audience
// with live count, discount, schedule, A/B variants. Saving keeps a draft; Review goes on to
// the cost estimate and the explicit confirmation.
import { api, navigate, page, toast } from "../bridge.js";
import { messageEditor, phonePreview, previewText } from "../editor.js";
import { $, $$, busy, checkbox, clearErrors, field, h, load, number, radio, replace, showErrors } from "../ui.js";

const form = $("#campaign-form");
let campaign = null;
let ctx = {};
let maxSegments = 4;
let segments = [];
let builtins = [];
let phone = null;
let editors = [];

function card(title, ...body) {
  const id = `h-${title.toLowerCase().replace(/[^a-z]+/g, "-")}`;
  return h("section", { class: "card", "aria-labelledby": id }, h("div", { class: "card-header" }, h("h2", { id }, title)), body);
}

// Audience choice: "segment:<id>" or "builtin:<name>".
function audienceValue(c) {
  if (c.segment_id) return `segment:${c.segment_id}`;
  if (c.rules && c.rules.builtin) return `builtin:${c.rules.builtin}`;
  return "builtin:all";
}

function audienceCard() {
  const select = h("select", { id: "audience", "data-field": "segment_id" },
    h("optgroup", { label: "Built-in" }, builtins.map((b) => h("option", { value: `builtin:${b.name}` }, b.title))),
    segments.length ? h("optgroup", { label: "Your segments" }, segments.map((s) => h("option", { value: `segment:${s.id}` }, s.name))) : null);
  select.value = audienceValue(campaign || {});
  const exclude = h("input", { id: "exclude-hours", type: "number", min: 0, max: 2160, value: (campaign && campaign.exclusions && campaign.exclusions.messaged_within_hours) || "", placeholder: "Off", "data-field": "exclusions" });
  const count = h("div", { class: "metric" }, h("div", { class: "value", id: "audience-count", "aria-live": "polite" }, "…"),
                  h("div", { class: "detail" }, "subscribers can be texted now"));
  select.addEventListener("change", audienceChanged);
  exclude.addEventListener("input", audienceChanged);
  return card("Audience",
    h("div", { class: "form-row" },
      field("Send to", select, { name: "segment_id", help: "Only subscribed numbers are ever texted." }),
      field("Skip anyone texted in the last … hours", exclude, { name: "exclusions" })),
    count);
}

let countSeq = 0;
async function audienceChanged() {
  const mine = ++countSeq;
  const el = $("#audience-count");
  el.textContent = "…";
  const [kind, value] = $("#audience").value.split(":");
  const hours = Number($("#exclude-hours").value || 0);
  const rules = kind === "builtin" ? { builtin: value } : (segments.find((s) => String(s.id) === value) || {}).rules;
  try {
    const result = await api("/api/segments/count", { method: "POST", body: { rules, exclusions: hours ? { messaged_within_hours: hours } : null } });
    if (mine === countSeq) el.textContent = number(result.count);
  } catch (error) {
    if (mine === countSeq) el.textContent = "—";
  }
  summary();
}

function discountCard() {
  const mode = (campaign && campaign.discount_mode) || "none";
  const cfg = (campaign && campaign.discount_config) || {};
  const modes = h("fieldset", { class: "choice-list", "data-field": "discount_mode", id: "discount-mode" },
    h("legend", {}, "Discount"),
    radio("No discount", { name: "discount_mode", value: "none", checked: mode === "none" }),
    radio("One shared code for everyone", { name: "discount_mode", value: "shared", checked: mode === "shared" }),
    radio("A unique single-use code for each subscriber", { name: "discount_mode", value: "unique", checked: mode === "unique" }));
  const details = h("div", { id: "discount-details", class: "stack", hidden: mode === "none" },
    h("div", { class: "form-row" },
      field("Type", h("select", { id: "d-type", "data-field": "discount_config.value_type" },
        h("option", { value: "percentage", selected: cfg.value_type !== "amount" }, "Percentage off"),
        h("option", { value: "amount", selected: cfg.value_type === "amount" }, "Amount off")), { name: "discount_config.value_type" }),
      field("Value", h("input", { id: "d-value", type: "text", inputmode: "decimal", value: cfg.value || "15" }),
            { name: "discount_config.value", help: "15 means 15% or 15.00 off." }),
      field("Ends", h("input", { id: "d-ends", type: "date", value: (cfg.ends_at || "").slice(0, 10) }),
            { name: "discount_config.ends_at", help: "Optional." })),
    h("div", { id: "shared-code", hidden: mode !== "shared" },
      field("Code", h("input", { id: "d-code", type: "text", value: cfg.code || "", placeholder: "SPRING15", style: "text-transform:uppercase" }),
            { name: "discount_config.code", help: "Leave empty to generate one." })),
    h("p", { class: "help" }, "Put {discount_code} in the text where the code should appear (Insert discount code)."));
  modes.addEventListener("change", () => {
    const value = form.elements.discount_mode.value;
    details.hidden = value === "none";
    $("#shared-code").hidden = value !== "shared";
    summary();
  });
  return card("Discount", modes, details);
}

function scheduleCard() {
  const later = Boolean(campaign && campaign.send_at);
  const local = (campaign && campaign.send_at_local || "").slice(0, 16);
  const when = h("input", { id: "send-at", type: "datetime-local", value: local, "data-field": "send_at" });
  const picker = h("div", { id: "later", hidden: !later, class: "stack-sm" },
    field(`Date and time (${ctx.timezone})`, when, { name: "send_at" }),
    checkbox("Send at this time in each subscriber's own time zone", { id: "local-time", checked: campaign && campaign.local_time }));
  const choice = h("fieldset", { class: "choice-list" }, h("legend", {}, "When"),
    radio("Send now, right after the review", { name: "when", value: "now", checked: !later }),
    radio("Schedule for later", { name: "when", value: "later", checked: later }));
  choice.addEventListener("change", () => { picker.hidden = form.elements.when.value !== "later"; summary(); });
  when.addEventListener("input", summary);
  picker.addEventListener("change", summary); // the local-time box
  return card("Schedule", choice, picker,
    h("p", { class: "help" }, "Texts never go out in quiet hours: anyone outside the window gets theirs when it opens."));
}

function abCard() {
  const variants = (campaign && campaign.variants) || [];
  const on = variants.length >= 2;
  const list = h("div", { id: "variants", class: "stack" });
  const addVariant = (body) => {
    const label = String.fromCharCode(66 + $$(".variant", list).length);
    const editor = messageEditor({ label: `Variant ${label}`, value: body, ctx: () => ctx, maxSegments,
                                   onChange: (_, sent) => phone.show(sent) });
    editor.classList.add("variant");
    list.append(editor);
    addBtn.hidden = $$(".variant", list).length >= 3;
  };
  const addBtn = h("button", { type: "button", class: "btn btn-sm", onclick: () => addVariant("") }, "Add variant");
  const settings = h("div", { id: "ab-settings", class: "stack", hidden: !on },
    h("p", { class: "help" }, "Variant A is the message above. A test share of the audience gets the variants; after the wait, the rest gets the winner."),
    list, addBtn,
    h("div", { class: "form-row" },
      field("Test share (%)", h("input", { id: "ab-percent", type: "number", min: 1, max: 100, value: (campaign && campaign.ab_test_percent) || 20 }), { name: "ab_test_percent" }),
      field("Winner by", h("select", { id: "ab-metric" },
        h("option", { value: "ctr", selected: !campaign || campaign.ab_metric === "ctr" }, "Click rate"),
        h("option", { value: "revenue_per_recipient", selected: campaign && campaign.ab_metric === "revenue_per_recipient" }, "Revenue per recipient")), { name: "ab_metric" }),
      field("Wait (hours)", h("input", { id: "ab-wait", type: "number", min: 0, max: 168, value: Math.round(((campaign && campaign.ab_wait_minutes) || 240) / 60) }), { name: "ab_wait_minutes" })));
  const toggle = checkbox("Test other versions of the text (A/B test)", { id: "ab-on", checked: on });
  toggle.querySelector("input").addEventListener("change", (e) => {
    settings.hidden = !e.target.checked;
    if (e.target.checked && !$$(".variant", list).length) addVariant("");
  });
  variants.slice(1).forEach((v) => addVariant(v.body));
  return card("A/B test", toggle, settings);
}

function summary() {
  const audience = $("#audience");
  if (!audience) return;
  $("#sum-audience").textContent = `${audience.selectedOptions[0] ? audience.selectedOptions[0].textContent : "—"} (${$("#audience-count").textContent})`;
  const later = form.elements.when && form.elements.when.value === "later";
  $("#sum-when").textContent = later ? ($("#send-at").value ? `${$("#send-at").value.replace("T", " ")} ${$("#local-time").checked ? "subscriber's time" : ctx.timezone}` : "Pick a time") : "Now, after review";
  const mode = form.elements.discount_mode ? form.elements.discount_mode.value : "none";
  $("#sum-discount").textContent = mode === "none" ? "None" : `${mode === "shared" ? "Shared" : "Unique"} code, ${$("#d-value").value}${$("#d-type").value === "percentage" ? "%" : " off"}`;
}

function render() {
  const name = h("input", { id: "name", type: "text", maxlength: 255, value: (campaign && campaign.name) || "", placeholder: "e.g. Spring sale" });
  const body = messageEditor({ label: "Message", name: "body", value: (campaign && campaign.body) || "", ctx: () => ctx,
                               maxSegments, onChange: (_, sent) => phone && phone.show(sent) });
  editors = [body];
  replace($("#main-col"),
    card("Message", field("Campaign name", name, { name: "name", help: "Only you see this." }), body),
    audienceCard(), discountCard(), scheduleCard(), abCard());
  phone = phonePreview(ctx.brand);
  replace($("#phone"), phone);
  phone.show(previewText(body.value(), ctx));
  $("#save-draft").disabled = false;
  $("#review").disabled = false;
  audienceChanged();
}

function collect() {
  const [kind, value] = $("#audience").value.split(":");
  const mode = form.elements.discount_mode.value;
  const hours = Number($("#exclude-hours").value || 0);
  const data = {
    name: $("#name").value.trim(), body: editors[0].value(),
    segment_id: kind === "segment" ? Number(value) : null,
    rules: kind === "builtin" ? { builtin: value } : null,
    exclusions: hours ? { messaged_within_hours: hours } : {},
    discount_mode: mode,
    discount_config: mode === "none" ? {} : {
      value_type: $("#d-type").value, value: $("#d-value").value.trim(),
      ...($("#d-ends").value ? { ends_at: `${$("#d-ends").value}T23:59:59` } : {}),
      ...(mode === "shared" && $("#d-code").value.trim() ? { code: $("#d-code").value.trim().toUpperCase() } : {}),
    },
    send_at: form.elements.when.value === "later" ? ($("#send-at").value || null) : null,
    local_time: form.elements.when.value === "later" && $("#local-time").checked,
  };
  const abOn = $("#ab-on").checked;
  const variantBodies = abOn ? [editors[0].value(), ...$$(".variant .message-body").map((t) => t.value)] : [];
  if (abOn) {
    data.ab_test_percent = Number($("#ab-percent").value || 20);
    data.ab_metric = $("#ab-metric").value;
    data.ab_wait_minutes = Math.round(Number($("#ab-wait").value || 4) * 60);
  }
  return { data, variantBodies, later: form.elements.when.value === "later" };
}

async function save() {
  clearErrors(form);
  const { data, variantBodies, later } = collect();
  if (!data.name) { showErrors(form, { name: "Give the campaign a name." }); return null; }
  if (later && !data.send_at) { showErrors(form, { send_at: "Pick the date and time to send." }); return null; }
  try {
    campaign = campaign
      ? await api(`/api/campaigns/${campaign.id}`, { method: "PATCH", body: data })
      : await api("/api/campaigns", { method: "POST", body: data });
    const had = (campaign.variants || []).length;
    if (variantBodies.length || had) {
      await api(`/api/campaigns/${campaign.id}/variants`, { method: "PUT", body: { variants: variantBodies.map((b) => ({ body: b })) } });
    }
    return campaign;
  } catch (error) {
    const where = error.details && error.details.field;
    if (!(where && showErrors(form, { [where]: error.message })) && !(error.details && !where && showErrors(form, error.details))) {
      toast(error.message, { error: true });
    }
    return null;
  }
}

$("#save-draft").addEventListener("click", (e) => busy(e.currentTarget, async () => {
  if (await save()) {
    toast("Draft saved");
    if (!page.campaignId) navigate(`/app/campaigns/${campaign.id}/edit`);
  }
}));
form.addEventListener("submit", (event) => {
  event.preventDefault();
  busy($("#review"), async () => {
    if (await save()) navigate(`/app/campaigns/${campaign.id}/review`);
  });
});

(async () => {
  const loaded = await load($("#main-col"), () => Promise.all([
    api("/api/settings"), api("/api/segments", { query: { limit: 200 } }), api("/api/segments/builtins"),
    page.campaignId ? api(`/api/campaigns/${page.campaignId}`) : null]), { lines: 6 });
  if (!loaded) return;
  const [settings, segs, built, existing] = loaded;
  segments = segs.items;
  builtins = built;
  campaign = existing;
  maxSegments = settings.settings.max_segments;
  ctx = { brand: settings.shop.brand, shopName: settings.shop.name, shopDomain: settings.shop.domain,
          timezone: settings.shop.timezone, appUrl: page.appUrl, shortLinkLen: page.shortLinkLen };
  if (campaign) {
    if (!["draft", "scheduled"].includes(campaign.status)) { navigate(`/app/campaigns/${campaign.id}`); return; }
    $("#page-title").textContent = `Edit “${campaign.name}”`;
    document.title = `${campaign.name} · Tidings`;
  }
  render();
})();
