// Flows: the four automations with an on/off switch each and their results.
import { api, appUrl, toast } from "../bridge.js";
import { $, badge, h, load, money, number, replace } from "../ui.js";

const ABOUT = {
  abandoned_checkout: "Texts shoppers who started a checkout and didn't finish, with a link back to their cart.",
  welcome: "Greets new subscribers after they confirm, and shows them around your store.",
  post_purchase: "Thanks customers after an order and suggests what to buy next.",
  winback: "Brings back customers who haven't ordered in a while.",
};

function stat(label, value) {
  return h("div", { class: "metric" }, h("div", { class: "label" }, label), h("div", { class: "value", style: "font-size:1.125rem" }, value));
}

function card(flow) {
  const s = flow.stats || {};
  const toggle = h("input", { type: "checkbox", id: `enabled-${flow.id}`, checked: flow.enabled });
  const label = h("span", {}, flow.enabled ? "On" : "Off");
  const status = h("span", {}, badge(flow.enabled ? "on" : "off", flow.enabled ? "On" : "Off"));
  toggle.addEventListener("change", async () => {
    toggle.disabled = true;
    try {
      const updated = await api(`/api/flows/${flow.id}/${toggle.checked ? "enable" : "disable"}`, { method: "POST" });
      label.textContent = updated.enabled ? "On" : "Off";
      replace(status, badge(updated.enabled ? "on" : "off", updated.enabled ? "On" : "Off"));
      toast(`${flow.name} turned ${updated.enabled ? "on" : "off"}`);
    } catch (error) {
      toggle.checked = !toggle.checked;
      toast(error.message, { error: true });
    } finally {
      toggle.disabled = false;
    }
  });
  const messages = flow.steps.filter((st) => st.type === "message").length;
  return h("section", { class: "card", "aria-labelledby": `flow-${flow.id}-h` },
    h("div", { class: "card-header" },
      h("div", { class: "row" }, h("h2", { id: `flow-${flow.id}-h` }, flow.name), status),
      h("div", { class: "row" },
        h("label", { class: "switch", for: toggle.id }, toggle, label,
          h("span", { class: "visually-hidden" }, ` ${flow.name}`)),
        h("a", { class: "btn", href: appUrl(`/app/flows/${flow.id}`) }, "Edit",
          h("span", { class: "visually-hidden" }, ` ${flow.name}`)))),
    h("p", { class: "muted", style: "margin:0 0 .75rem" }, ABOUT[flow.kind] || "",
      ` ${messages} ${messages === 1 ? "message" : "messages"}.`),
    h("div", { class: "grid", style: "grid-template-columns:repeat(auto-fit,minmax(7rem,1fr))" },
      stat("Runs", number((s.runs || {}).total)), stat("Sent", number(s.sent)),
      stat("Clicks", number(s.unique_clicks)), stat("Orders", number(s.orders)),
      stat("Revenue", money(s.revenue))));
}

(async () => {
  const el = $("#flows");
  const data = await load(el, () => api("/api/flows"), { lines: 6 });
  if (data) replace(el, data.items.map(card));
})();
