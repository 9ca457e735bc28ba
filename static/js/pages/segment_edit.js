// Segment builder: groups of conditions joined by AND/OR, with a live count.
import { api, confirmModal, navigate, page, toast } from "../bridge.js";
import { $, $$, busy, clearErrors, h, humanize, load, number, replace, showErrors } from "../ui.js";

const FIELD_LABELS = {
  subscribed_at: "Subscribed", source: "Sign-up source", country: "Country",
  orders_count: "Number of orders", total_spent: "Amount spent", last_order: "Last order",
  clicked: "Clicked a link", campaign: "Campaign", checkout_abandoned: "Abandoned a checkout",
};
const OPERATOR_LABELS = {
  before: "before", after: "after", within_days: "in the last … days",
  not_within_days: "not in the last … days", in: "is one of", "=": "is", ">": "more than",
  "<": "less than", ">=": "at least", "<=": "at most", received: "received",
  not_received: "did not receive",
};
const SOURCES = ["checkout", "widget", "keyword", "import", "admin", "shopify_sync", "carrier"];

let fields = [];
let builtins = [];
let campaigns = [];
let seq = 0;
const form = $("#segment-form");

function operatorsOf(field) {
  return (fields.find((f) => f.field === field) || { operators: [] }).operators;
}

function valueControl(kind, value, id) {
  const attrs = { id, class: "rule-value", "aria-label": "Value" };
  switch (kind) {
    case "days": case "count":
      return h("input", { ...attrs, type: "number", min: kind === "days" ? 1 : 0, value: value ?? (kind === "days" ? 30 : 1), inputmode: "numeric" });
    case "amount":
      return h("input", { ...attrs, type: "text", inputmode: "decimal", value: value ?? "50" });
    case "moment":
      return h("input", { ...attrs, type: "date", value: (value || "").slice(0, 10) });
    case "countries":
      return h("input", { ...attrs, type: "text", value: (value || ["US"]).join(", "), placeholder: "US, CA" });
    case "sources": {
      const chosen = new Set(value || ["widget"]);
      return h("select", { ...attrs, multiple: true, size: 4 },
        SOURCES.map((s) => h("option", { value: s, selected: chosen.has(s) }, humanize(s))));
    }
    case "campaign":
      return campaigns.length
        ? h("select", attrs, campaigns.map((c) => h("option", { value: c.id, selected: c.id === value }, c.name)))
        : h("input", { ...attrs, type: "number", min: 1, value: value ?? "", placeholder: "Campaign id" });
    default:
      return h("input", { ...attrs, type: "text", value: value ?? "" });
  }
}

function readValue(kind, control) {
  switch (kind) {
    case "days": case "count": case "campaign": return control.value === "" ? null : Number(control.value);
    case "countries": return control.value.split(",").map((c) => c.trim().toUpperCase()).filter(Boolean);
    case "sources": return Array.from(control.selectedOptions).map((o) => o.value);
    default: return control.value.trim();
  }
}

function condition(rule) {
  const id = ++seq;
  const fieldSelect = h("select", { id: `field-${id}`, class: "rule-field" },
    fields.map((f) => h("option", { value: f.field, selected: f.field === rule.field }, FIELD_LABELS[f.field] || humanize(f.field))));
  const opSelect = h("select", { id: `op-${id}`, class: "rule-op" });
  const valueSlot = h("div", { class: "field" });
  const row = h("div", { class: "condition" },
    h("div", { class: "field" }, h("label", { for: fieldSelect.id }, "Field"), fieldSelect),
    h("div", { class: "field" }, h("label", { for: opSelect.id }, "Condition"), opSelect),
    valueSlot,
    h("button", { type: "button", class: "btn btn-plain critical", "aria-label": "Remove condition",
                  onclick: () => { const group = row.closest(".group"); row.remove(); if (!$$(".condition", group).length) group.remove(); reindex(); changed(); } }, "Remove"));
  const fillOps = (operator) => {
    replace(opSelect, operatorsOf(fieldSelect.value).map((o) =>
      h("option", { value: o.operator, selected: o.operator === operator, dataset: { kind: o.value } }, OPERATOR_LABELS[o.operator] || o.operator)));
  };
  const fillValue = (value) => {
    const kind = opSelect.selectedOptions[0] ? opSelect.selectedOptions[0].dataset.kind : "";
    const control = valueControl(kind, value, `value-${id}`);
    replace(valueSlot, h("label", { for: control.id }, "Value"), control,
            h("div", { class: "field-error", id: `${control.id}-error`, hidden: true }));
    row.dataset.kind = kind;
  };
  fieldSelect.addEventListener("change", () => { fillOps(); fillValue(); reindex(); changed(); });
  opSelect.addEventListener("change", () => { fillValue(); reindex(); changed(); });
  fillOps(rule.operator);
  fillValue(rule.value);
  return row;
}

function group(node) {
  const id = ++seq;
  const list = h("div", { class: "conditions" }, (node.rules || []).map(condition));
  const op = h("select", { id: `gop-${id}`, class: "group-op", style: "width:auto" },
    h("option", { value: "and", selected: node.op !== "or" }, "all of these (AND)"),
    h("option", { value: "or", selected: node.op === "or" }, "any of these (OR)"));
  op.addEventListener("change", changed);
  return h("div", { class: "group" },
    h("div", { class: "row between", style: "margin-bottom:.5rem" },
      h("div", { class: "row" }, h("label", { for: op.id }, "Match"), op)),
    list,
    h("button", { type: "button", class: "btn btn-sm", style: "margin-top:.5rem", onclick: () => {
      list.append(condition({ field: "orders_count", operator: ">=", value: 1 })); reindex(); changed(); } }, "Add condition"));
}

// Error paths from the API name nodes as rules.rules[g].rules[r](.value).
function reindex() {
  $$(".group", $("#groups")).forEach((g, gi) => {
    $$(".condition", g).forEach((c, ri) => {
      const path = `rules.rules[${gi}].rules[${ri}]`;
      $(".rule-field", c).dataset.field = path;
      $(".rule-value", c).dataset.field = `${path}.value`;
    });
  });
}

// Any tree -> top {op, rules: [groups of plain rules]} the builder can show.
function normalise(tree) {
  const expand = (node) => node && node.builtin ? (builtins.find((b) => b.name === node.builtin) || {}).rules || { op: "and", rules: [] } : node;
  const top = expand(tree) || { op: "or", rules: [] };
  if (top.field) return { op: "or", rules: [{ op: "and", rules: [top] }] };
  const groups = [];
  const loose = [];
  for (const child of top.rules || []) {
    const node = expand(child);
    if (node.field) loose.push(node);
    else groups.push({ op: node.op, rules: (node.rules || []).map(expand).filter((r) => r.field) });
  }
  if (loose.length) {
    if (top.op === "and") groups.unshift({ op: "and", rules: loose });
    else loose.forEach((r) => groups.push({ op: "and", rules: [r] }));
  }
  return { op: groups.length > 1 ? top.op : "or", rules: groups };
}

function render(tree) {
  const norm = normalise(tree);
  $("#top-op").value = norm.op;
  replace($("#groups"), norm.rules.map(group));
  reindex();
  changed();
}

function collect() {
  return {
    op: $("#top-op").value,
    rules: $$(".group", $("#groups")).map((g) => ({
      op: $(".group-op", g).value,
      rules: $$(".condition", g).map((c) => ({
        field: $(".rule-field", c).value, operator: $(".rule-op", c).value,
        value: readValue(c.dataset.kind, $(".rule-value", c)),
      })),
    })),
  };
}

let countTimer = null;
let countSeq = 0;
function changed() {
  clearTimeout(countTimer);
  countTimer = setTimeout(async () => {
    const mine = ++countSeq;
    const el = $("#count");
    el.textContent = "…";
    try {
      const result = await api("/api/segments/count", { method: "POST", body: { rules: collect() } });
      if (mine === countSeq) { el.textContent = number(result.count); clearErrors($("#groups")); $("#rules-error").hidden = true; }
    } catch (error) {
      if (mine !== countSeq) return;
      el.textContent = "—";
      if (error.details && error.details.path) showPath(error);
    }
  }, 350);
}

function showPath(error) {
  const path = error.details.path;
  const shown = showErrors(form, { [path]: error.message }) ||
                showErrors(form, { [path.replace(/\.value$/, "")]: error.message });
  if (!shown) { $("#rules-error").textContent = error.message; $("#rules-error").hidden = false; }
}

form.addEventListener("input", (e) => { if (e.target.closest("#groups")) changed(); });
$("#top-op").addEventListener("change", changed);
$("#add-group").addEventListener("click", () => {
  $("#groups").append(group({ op: "and", rules: [{ field: "orders_count", operator: ">=", value: 1 }] }));
  reindex(); changed();
});
$("#start-from").addEventListener("change", (e) => {
  const b = builtins.find((x) => x.name === e.target.value);
  if (b) { render(b.rules); if (!$("#name").value) $("#name").value = b.title; }
});

form.addEventListener("submit", (event) => {
  event.preventDefault();
  busy($("#save"), async () => {
    clearErrors(form);
    $("#rules-error").hidden = true;
    const body = { name: $("#name").value.trim(), rules: collect() };
    if (!body.name) { showErrors(form, { name: "Give the segment a name." }); return; }
    try {
      const saved = page.segmentId
        ? await api(`/api/segments/${page.segmentId}`, { method: "PATCH", body })
        : await api("/api/segments", { method: "POST", body });
      toast("Segment saved");
      if (!page.segmentId) navigate(`/app/segments/${saved.id}`);
    } catch (error) {
      if (error.details && error.details.path) showPath(error);
      else if (!error.details || !showErrors(form, error.details)) toast(error.message, { error: true });
    }
  });
});

$("#delete").addEventListener("click", async () => {
  if (!await confirmModal({ title: "Delete this segment?", destructive: true, confirmLabel: "Delete segment",
    body: "Draft campaigns that use it lose their audience choice." })) return;
  try {
    await api(`/api/segments/${page.segmentId}`, { method: "DELETE" });
    navigate("/app/segments");
  } catch (error) { toast(error.message, { error: true }); }
});

(async () => {
  const ready = await load($("#groups"), async () => {
    [fields, builtins] = await Promise.all([api("/api/segments/fields"), api("/api/segments/builtins")]);
    campaigns = await api("/api/campaigns", { query: { limit: 100 } }).then((d) => d.items || d).catch(() => []);
    return page.segmentId ? api(`/api/segments/${page.segmentId}`) : { name: "", rules: { op: "or", rules: [{ op: "and", rules: [{ field: "orders_count", operator: ">=", value: 1 }] }] } };
  }, { lines: 4 });
  if (!ready) return;
  replace($("#start-from"), h("option", { value: "" }, "Keep my conditions"),
          builtins.map((b) => h("option", { value: b.name }, b.title)));
  $("#name").value = ready.name || "";
  if (page.segmentId) {
    $("#page-title").textContent = ready.name;
    document.title = `${ready.name} · Tidings`;
    $("#delete").hidden = false;
  } else {
    $("#page-title").textContent = "Create segment";
  }
  render(ready.rules);
})();
