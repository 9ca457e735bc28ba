// Flow editor: steps (waits and messages with their own discount), settings, holdout, results.
import { api, page, toast } from "../bridge.js";
import { messageEditor, phonePreview, previewText } from "../editor.js";
import { $, $$, busy, checkbox, clearErrors, field, h, humanize, load, money, number, replace,
         showErrors, table } from "../ui.js";

const UNITS = [["minutes", 1], ["hours", 60], ["days", 1440]];
const SETTING_LABELS = {
  exit_on_purchase: "Stop when the subscriber places an order",
  signup_offer: "Fill {discount_code} with the sign-up offer's code",
  trigger_on: "Start after",
  days_since_order: "Days since the last order",
  period_days: "At most one win-back per this many days",
};
const form = $("#flow-form");
let flow = null;
let ctx = {};
let phone = null;

function splitMinutes(minutes) {
  for (const [unit, size] of [...UNITS].reverse()) if (minutes % size === 0 && minutes >= size) return [minutes / size, unit];
  return [minutes, "minutes"];
}

// Steps keep their ids through an edit, so runs waiting at a step stay at that step (a step
// added here has none: the server gives it one).
function stepData(type, step) {
  return Number.isInteger(step.id) ? { type, stepId: String(step.id) } : { type };
}

function withId(li, step) {
  return li.dataset.stepId ? { id: Number(li.dataset.stepId), ...step } : step;
}

function waitStep(step) {
  const [amount, unit] = splitMinutes(step.minutes || 0);
  const n = h("input", { type: "number", min: 0, value: amount, class: "wait-amount", "aria-label": "Wait for" });
  const u = h("select", { class: "wait-unit", "aria-label": "Unit", style: "width:auto" },
    UNITS.map(([name]) => h("option", { value: name, selected: name === unit }, name)));
  return h("li", { class: "step", dataset: stepData("wait", step) },
    h("div", { class: "card", style: "background:var(--surface-2)" },
      h("div", { class: "row between" }, h("strong", {}, "Wait"), stepTools()),
      h("div", { class: "row", style: "margin-top:.5rem" }, n, u)));
}

function discountFields(discount) {
  const on = Boolean(discount);
  const d = discount || { value_type: "percentage", value: "10", expires_after_hours: 72 };
  const box = h("div", { class: "form-row discount-fields", hidden: !on },
    field("Type", h("select", { class: "d-type" },
      h("option", { value: "percentage", selected: d.value_type === "percentage" }, "Percentage"),
      h("option", { value: "amount", selected: d.value_type === "amount" }, "Fixed amount"))),
    field("Value", h("input", { type: "text", inputmode: "decimal", class: "d-value", value: d.value })),
    field("Valid for (hours)", h("input", { type: "number", min: 1, class: "d-hours", value: d.expires_after_hours || 72 })));
  const toggle = checkbox("Give a unique discount code in this text", { class: "d-on", checked: on });
  toggle.querySelector("input").addEventListener("change", (e) => { box.hidden = !e.target.checked; });
  return h("div", {}, toggle, box);
}

function messageStep(step) {
  const li = h("li", { class: "step", dataset: stepData("message", step) });
  const editor = messageEditor({ label: "Text", value: step.body, tags: [...(page.mergeTags || []), ...(flow.merge_tags || [])],
    ctx: () => ctx, onChange: (_, sent) => phone && phone.show(sent) });
  editor.textarea.addEventListener("focus", () => phone.show(previewText(editor.value(), ctx)));
  li.append(h("div", { class: "card", style: "background:var(--surface-2)" },
    h("div", { class: "row between" }, h("strong", {}, "Send a text"), stepTools()), editor, discountFields(step.discount)));
  li.editor = editor;
  return li;
}

function stepTools() {
  const move = (dir) => (e) => {
    const li = e.currentTarget.closest("li");
    const other = dir < 0 ? li.previousElementSibling : li.nextElementSibling;
    if (other) (dir < 0 ? other.before(li) : other.after(li));
    reindex();
  };
  return h("div", { class: "btn-group" },
    h("button", { type: "button", class: "btn btn-sm", "aria-label": "Move step up", onclick: move(-1) }, "↑"),
    h("button", { type: "button", class: "btn btn-sm", "aria-label": "Move step down", onclick: move(1) }, "↓"),
    h("button", { type: "button", class: "btn btn-sm btn-plain critical", onclick: (e) => { e.currentTarget.closest("li").remove(); reindex(); } }, "Remove step"));
}

// The API names fields steps[i].body / steps[i].discount / steps[i].minutes.
function reindex() {
  $$("#steps > li").forEach((li, i) => {
    if (li.dataset.type === "message") {
      $(".message-body", li).dataset.field = `steps[${i}].body`;
      $(".d-on", li).dataset.field = `steps[${i}].discount`;
    } else {
      $(".wait-amount", li).dataset.field = `steps[${i}].minutes`;
    }
  });
}

function collectSteps() {
  return $$("#steps > li").map((li) => {
    if (li.dataset.type === "wait") {
      const size = UNITS.find(([u]) => u === $(".wait-unit", li).value)[1];
      return withId(li, { type: "wait", minutes: Math.round(Number($(".wait-amount", li).value || 0) * size) });
    }
    const on = $(".d-on", li).checked;
    return withId(li, { type: "message", body: $(".message-body", li).value,
             discount: on ? { value_type: $(".d-type", li).value, value: $(".d-value", li).value.trim(),
                              expires_after_hours: Number($(".d-hours", li).value) } : null });
  });
}

function settingsForm() {
  const controls = Object.entries(flow.settings).map(([key, value]) => {
    if (typeof value === "boolean") return checkbox(SETTING_LABELS[key] || humanize(key), { name: `settings.${key}`, checked: value, "data-field": `settings.${key}` });
    if (key === "trigger_on") return field(SETTING_LABELS[key], h("select", { name: `settings.${key}` },
      h("option", { value: "order", selected: value === "order" }, "the order is placed"),
      h("option", { value: "fulfillment", selected: value === "fulfillment" }, "the order is fulfilled")), { name: `settings.${key}` });
    return field(SETTING_LABELS[key] || humanize(key), h("input", { type: "number", min: 1, name: `settings.${key}`, value }), { name: `settings.${key}` });
  });
  return [h("div", { class: "field" }, h("label", { for: "flow-name" }, "Name"),
            h("input", { id: "flow-name", type: "text", value: flow.name, "data-field": "name" })),
    ...controls,
    field("Holdout (%)", h("input", { type: "number", min: 0, max: 50, name: "holdout_percent", value: flow.holdout_percent }),
          { name: "holdout_percent", help: "Share of triggered subscribers not texted, to measure real lift." })];
}

function collectSettings() {
  const settings = {};
  for (const [key, value] of Object.entries(flow.settings)) {
    const el = form.elements[`settings.${key}`];
    settings[key] = typeof value === "boolean" ? el.checked : key === "trigger_on" ? el.value : Number(el.value);
  }
  return settings;
}

function results(s) {
  const rows = (s.steps || []).map((st) => ({ ...st, label: `Text ${st.step + 1}` }));
  return [h("dl", { class: "facts" },
    h("dt", {}, "Runs"), h("dd", {}, number((s.runs || {}).total)),
    h("dt", {}, "Texts sent"), h("dd", {}, number(s.sent)),
    h("dt", {}, "Orders"), h("dd", {}, number(s.orders)),
    h("dt", {}, "Revenue"), h("dd", {}, money(s.revenue)),
    h("dt", {}, "Spend"), h("dd", {}, money(s.spend))),
    rows.length ? table([{ label: "Step", cell: (r) => `Step ${r.step + 1}` }, { label: "Sent", num: true, cell: (r) => number(r.sent) },
                         { label: "Clicks", num: true, cell: (r) => number(r.unique_clicks) }, { label: "Orders", num: true, cell: (r) => number(r.orders) }],
                        rows, { caption: "Results per step" }) : null];
}

function render() {
  $("#page-title").textContent = flow.name;
  document.title = `${flow.name} · Tidings`;
  const enabled = $("#enabled");
  enabled.checked = flow.enabled;
  enabled.disabled = false;
  $("#enabled-label").textContent = flow.enabled ? "On" : "Off";
  replace($("#steps"), flow.steps.map((st) => (st.type === "wait" ? waitStep(st) : messageStep(st))));
  reindex();
  replace($("#settings"), settingsForm());
  replace($("#results"), results(flow.stats || {}));
  const first = flow.steps.find((st) => st.type === "message");
  phone.show(first ? previewText(first.body, ctx) : "");
  $("#save").disabled = false;
}

$("#enabled").addEventListener("change", async (e) => {
  const box = e.currentTarget;
  box.disabled = true;
  try {
    flow = await api(`/api/flows/${flow.id}/${box.checked ? "enable" : "disable"}`, { method: "POST" });
    $("#enabled-label").textContent = flow.enabled ? "On" : "Off";
    toast(`Flow turned ${flow.enabled ? "on" : "off"}`);
  } catch (error) {
    box.checked = !box.checked;
    toast(error.message, { error: true });
  } finally {
    box.disabled = false;
  }
});
$("#add-wait").addEventListener("click", () => { $("#steps").append(waitStep({ minutes: 60 })); reindex(); });
$("#add-message").addEventListener("click", () => { $("#steps").append(messageStep({ body: "" })); reindex(); });

form.addEventListener("submit", (event) => {
  event.preventDefault();
  busy($("#save"), async () => {
    clearErrors(form);
    $("#steps-error").hidden = true;
    try {
      flow = await api(`/api/flows/${flow.id}`, { method: "PATCH", body: {
        name: $("#flow-name").value.trim(), steps: collectSteps(), settings: collectSettings(),
        holdout_percent: Number(form.elements.holdout_percent.value || 0) } });
      render();
      toast("Flow saved");
    } catch (error) {
      const where = error.details && error.details.field;
      if (!where || !showErrors(form, { [where]: error.message })) {
        $("#steps-error").textContent = error.message;
        $("#steps-error").hidden = false;
        toast(error.message, { error: true });
      }
    }
  });
});

(async () => {
  const loaded = await load($("#steps"), async () => {
    const [f, settings] = await Promise.all([api(`/api/flows/${page.flowId}`), api("/api/settings")]);
    return { f, settings };
  });
  if (!loaded) return;
  flow = loaded.f;
  const s = loaded.settings;
  ctx = { brand: s.shop.brand, shopName: s.shop.name, shopDomain: s.shop.domain, appUrl: page.appUrl,
          shortLinkLen: page.shortLinkLen };
  phone = phonePreview(s.shop.brand);
  replace($("#preview"), phone);
  render();
})();
