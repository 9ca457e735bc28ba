// Settings: every merchant setting in annotated sections, saved together; the server validates
// and answers field paths ("quiet_hours.start") that are shown under their inputs.
import { api, embedded, page, shop, toast } from "../bridge.js";
import { $, $$, busy, checkbox, clearErrors, field, h, load, replace, showErrors } from "../ui.js";

const form = $("#settings-form");
let doc = null;

const input = (name, value, attrs = {}) =>
  h("input", { type: "text", name, value: value ?? "", autocomplete: "off", ...attrs });
const area = (name, value, rows = 3) => h("textarea", { name, rows }, value ?? "");

function section(title, text, ...body) {
  return h("section", { class: "annotated", "aria-label": title },
    h("div", {}, h("h2", {}, title), h("p", {}, text)),
    h("div", { class: "card stack" }, body));
}

function capRow(cap, i) {
  return h("div", { class: "form-row cap-row" },
    field("Messages", input(`cap-count`, cap.count, { type: "number", min: 1, inputmode: "numeric" }),
          { name: `frequency_caps.${i}.count` }),
    field("Per hours", input(`cap-hours`, cap.hours, { type: "number", min: 1, inputmode: "numeric" }),
          { name: `frequency_caps.${i}.hours` }),
    h("div", { class: "field", style: "align-self:end" },
      h("button", { type: "button", class: "btn btn-plain critical", onclick: (e) => {
        e.currentTarget.closest(".cap-row").remove(); renumber(); } }, "Remove cap")));
}

function priceRow(country, price) {
  return h("div", { class: "form-row price-row" },
    field("Country code", input("price-country", country, { maxlength: 2, style: "text-transform:uppercase" })),
    field("Price per segment (USD)", input("price-value", price, { inputmode: "decimal" }),
          { name: `price_table.${country}` }),
    h("div", { class: "field", style: "align-self:end" },
      h("button", { type: "button", class: "btn btn-plain critical", onclick: (e) =>
        e.currentTarget.closest(".price-row").remove() }, "Remove price")));
}

function renumber() {
  $$(".cap-row", form).forEach((row, i) => {
    const [count, hours] = $$("input", row);
    count.dataset.field = `frequency_caps.${i}.count`;
    hours.dataset.field = `frequency_caps.${i}.hours`;
  });
}

function disclosureHelp(key) {
  const needed = doc.limits.required_disclosures[key] || [];
  return "Must keep: " + needed.join(", ") + ". {brand} is replaced by your brand name.";
}

function widgetPreview() {
  const w = (name) => form.elements[name];
  const offer = w("widget.offer_text").value.trim();
  return h("div", { class: "card", style: "background:#fafafa;text-align:center", "aria-label": "Pop-up preview", role: "group" },
    h("div", { class: "muted", style: "font-size:.6875rem;margin-bottom:.375rem" }, "Preview"),
    h("strong", { style: "font-size:1rem;display:block" }, w("widget.headline").value),
    offer ? h("div", { class: "badge badge-success plain", style: "margin:.375rem 0" }, offer) : null,
    h("p", { class: "muted" }, w("widget.body").value),
    h("div", { class: "btn btn-primary", style: "pointer-events:none" }, w("widget.button_label").value || "Subscribe"));
}

// The theme editor with our app embed selected: inside the admin App Bridge's shopify://admin
// link navigates the top frame; outside it the shop's admin opens in a new tab.
function themeEditorLink() {
  const path = `themes/current/editor?context=apps&activateAppId=${encodeURIComponent(page.apiKey)}/${page.embedBlock}`;
  return embedded
    ? h("a", { href: `shopify://admin/${path}`, target: "_top", id: "theme-editor" }, "Open the theme editor")
    : h("a", { href: `https://${shop}/admin/${path}`, target: "_blank", rel: "noopener", id: "theme-editor" },
        "Open the theme editor", h("span", { class: "visually-hidden" }, " (new tab)"));
}

function render() {
  const s = doc.settings;
  const legal = doc.limits.legal_window;
  const caps = h("div", { id: "caps", class: "stack-sm" }, (s.frequency_caps || []).map(capRow));
  const prices = h("div", { id: "prices", class: "stack-sm" },
    Object.entries(s.price_table || {}).map(([c, p]) => priceRow(c, p)));
  const preview = h("div", { id: "widget-preview" });
  replace(form,
    section("Sender and brand", "Who your texts come from. Every marketing text starts with your brand name.",
      field("Brand name", input("brand_name", s.brand_name, { placeholder: doc.shop.name, maxlength: 40 }),
            { name: "brand_name", help: `Shown at the start of each text. Empty uses “${doc.shop.brand}”.` }),
      field("Support contact", input("support_contact", s.support_contact, { maxlength: 120 }),
            { name: "support_contact", help: "Email, phone or URL sent in HELP replies." }),
      h("div", { class: "form-row" },
        field("Sender phone number", input("sender.from_number", s.sender.from_number, { type: "tel", placeholder: "+14155550123" }),
              { name: "sender.from_number", help: "E.164 format. Leave empty to use the app's number." }),
        field("Twilio Messaging Service SID", input("sender.messaging_service_sid", s.sender.messaging_service_sid, { placeholder: "MG…" }),
              { name: "sender.messaging_service_sid", help: "Optional; used instead of a single number." }))),
    section("Sending hours", `Marketing texts go out only inside this window in each subscriber's own time zone. The law allows ${legal.start}–${legal.end}; you can only narrow it (stricter state rules apply automatically).`,
      h("div", { class: "form-row" },
        field("Earliest", input("quiet_hours.start", s.quiet_hours.start, { type: "time", min: legal.start, max: legal.end }),
              { name: "quiet_hours.start" }),
        field("Latest", input("quiet_hours.end", s.quiet_hours.end, { type: "time", min: legal.start, max: legal.end === "24:00" ? "23:59" : legal.end }),
              { name: "quiet_hours.end" })),
      field("Smart sending (hours)", input("smart_sending_hours", s.smart_sending_hours, { type: "number", min: 0, max: 168 }),
            { name: "smart_sending_hours", help: "Skip anyone who got a marketing text in this many hours. 0 turns it off." })),
    section("Limits", "Caps protect subscribers from too many texts and you from surprise bills.",
      h("fieldset", {}, h("legend", {}, "Frequency caps per subscriber"), caps,
        h("button", { type: "button", class: "btn btn-sm", style: "margin-top:.5rem", onclick: () => {
          caps.append(capRow({ count: 3, hours: 168 }, $$(".cap-row", form).length)); renumber(); } }, "Add cap")),
      h("div", { class: "form-row" },
        field("Messages per day", input("usage_caps.daily_messages", s.usage_caps.daily_messages, { type: "number", min: 0 }),
              { name: "usage_caps.daily_messages", help: "Empty: no limit." }),
        field("Messages per month", input("usage_caps.monthly_messages", s.usage_caps.monthly_messages, { type: "number", min: 0 }),
              { name: "usage_caps.monthly_messages" })),
      h("div", { class: "form-row" },
        field("Spend per day (USD)", input("usage_caps.daily_spend", s.usage_caps.daily_spend, { inputmode: "decimal" }),
              { name: "usage_caps.daily_spend" }),
        field("Spend per month (USD)", input("usage_caps.monthly_spend", s.usage_caps.monthly_spend, { inputmode: "decimal" }),
              { name: "usage_caps.monthly_spend" })),
      h("div", { class: "form-row" },
        field("Longest message (segments)", input("max_segments", s.max_segments, { type: "number", min: 1, max: 10 }),
              { name: "max_segments" }),
        field("Sending speed (messages/second)", input("messages_per_second", s.messages_per_second, { inputmode: "decimal" }),
              { name: "messages_per_second", help: "Match your sender's carrier throughput." }))),
    section("Consent and disclosures", "What shoppers read when they sign up and in the texts the law requires. Each text must keep its disclosures.",
      field("Consent text (sign-up forms)", area("consent_text", s.consent_text, 4), { name: "consent_text", help: disclosureHelp("consent_text") }),
      field("Confirmation request", area("confirmation_text", s.confirmation_text), { name: "confirmation_text", help: disclosureHelp("confirmation_text") }),
      field("Welcome text", area("welcome_text", s.welcome_text), { name: "welcome_text", help: disclosureHelp("welcome_text") }),
      field("HELP reply", area("help_text", s.help_text), { name: "help_text", help: disclosureHelp("help_text") + " {support} is your support contact." }),
      field("Opt-out confirmation", area("opt_out_text", s.opt_out_text, 2), { name: "opt_out_text", help: disclosureHelp("opt_out_text") }),
      h("div", { class: "form-row" },
        field("Opt-out footer", input("footer_text", s.footer_text, { maxlength: 60 }), { name: "footer_text" }),
        field("Add the footer every Nth campaign", input("footer_every_n", s.footer_every_n, { type: "number", min: 0 }),
              { name: "footer_every_n", help: "0: only on a subscriber's first text." })),
      field("Join keywords", input("join_keywords", (s.join_keywords || []).join(", ")),
            { name: "join_keywords", help: "Words shoppers can text you to subscribe, separated by commas." })),
    section("Attribution", "Which orders count as earned by a text. Changing the window applies to new orders; recompute from Analytics to re-apply.",
      h("div", { class: "form-row" },
        field("Click window (days)", input("attribution.click_window_days", s.attribution.click_window_days, { type: "number", min: 1, max: 30 }),
              { name: "attribution.click_window_days" }),
        field("View-through window (hours)", input("attribution.view_through_hours", s.attribution.view_through_hours, { type: "number", min: 1, max: 168 }),
              { name: "attribution.view_through_hours" })),
      checkbox("Count orders from subscribers who received a text without clicking (view-through)",
               { name: "attribution.view_through", checked: s.attribution.view_through, "data-field": "attribution.view_through" }),
      field("Holdout group (%)", input("holdout_percent", s.holdout_percent, { type: "number", min: 0, max: 50 }),
            { name: "holdout_percent", help: "A share of each audience that is not texted, to measure real lift." })),
    section("Prices", "Price per SMS segment used for estimates, spend caps and ROI. Countries not listed use the built-in table.",
      prices,
      h("div", { class: "row" },
        h("button", { type: "button", class: "btn btn-sm", onclick: () => prices.append(priceRow("", "")) }, "Add price")),
      h("p", { class: "help" }, "Built-in: " + Object.entries(doc.default_price_table).map(([c, p]) => `${c} ${p}`).join(" · "))),
    section("Links and discounts", "Where links in texts may point, and how generated codes start.",
      field("Other allowed link domains", input("allowed_link_domains", (s.allowed_link_domains || []).join(", ")),
            { name: "allowed_link_domains", help: "Your shop's own domains are always allowed." }),
      field("Discount code prefix", input("discount_prefix", s.discount_prefix, { maxlength: 12 }), { name: "discount_prefix" })),
    section("Sign-up pop-up", "The storefront pop-up. Its consent text is the one above; its colour, when it appears and whether it shows on phones are set in the theme editor.",
      h("p", {}, "Turn it on under App embeds in your theme: ", themeEditorLink()),
      h("div", { class: "layout" },
        h("div", {},
          checkbox("Show the pop-up", { name: "widget.enabled", checked: s.widget.enabled, "data-field": "widget.enabled" }),
          field("Headline", input("widget.headline", s.widget.headline, { maxlength: 80 }), { name: "widget.headline" }),
          field("Text", area("widget.body", s.widget.body, 2), { name: "widget.body" }),
          field("Offer", input("widget.offer_text", s.widget.offer_text, { maxlength: 80 }), { name: "widget.offer_text" }),
          field("Button label", input("widget.button_label", s.widget.button_label, { maxlength: 30 }), { name: "widget.button_label" }),
          field("Welcome discount code", input("widget.welcome_discount", s.widget.welcome_discount),
                { name: "widget.welcome_discount", help: "Sent in the welcome text as {discount_code}." }),
          field("Accept sign-ups from", input("widget.allowed_countries", (s.widget.allowed_countries || []).join(", "),
                                               { placeholder: doc.shop.country || "US" }),
                { name: "widget.allowed_countries", help: "Two-letter country codes, separated by commas. Empty: only your shop's country (numbers from far-off ranges are a common SMS fraud)." })),
        preview)));
  replace(preview, widgetPreview());
  form.addEventListener("input", (event) => {
    if ((event.target.name || "").startsWith("widget.")) replace(preview, widgetPreview());
    $("#save").disabled = false;
  });
  $("#save").disabled = false;
}

function value(name) {
  const el = form.elements[name];
  return el.type === "checkbox" ? el.checked : el.value.trim();
}

function list(name) {
  return value(name).split(",").map((x) => x.trim()).filter(Boolean);
}

function collect() {
  const body = {};
  for (const el of form.elements) {
    if (!el.name || el.name.startsWith("cap-") || el.name.startsWith("price-")) continue;
    if (["join_keywords", "allowed_link_domains"].includes(el.name)) { body[el.name] = list(el.name); continue; }
    if (el.name === "widget.allowed_countries") {
      (body.widget = body.widget || {}).allowed_countries = list(el.name).map((c) => c.toUpperCase());
      continue;
    }
    const [key, sub] = el.name.split(".");
    if (sub) (body[key] = body[key] || {})[sub] = value(el.name);
    else body[key] = value(el.name);
  }
  body.frequency_caps = $$(".cap-row", form).map((row) => {
    const [count, hours] = $$("input", row);
    return { count: count.value, hours: hours.value };
  });
  body.price_table = {};
  for (const row of $$(".price-row", form)) {
    const [country, price] = $$("input", row);
    const code = country.value.trim().toUpperCase();
    price.dataset.field = `price_table.${code}`;
    if (code || price.value.trim()) body.price_table[code] = price.value.trim();
  }
  return body;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  busy($("#save"), async () => {
    clearErrors(form);
    try {
      doc = await api("/api/settings", { method: "PUT", body: collect() });
      toast("Settings saved");
    } catch (error) {
      if (error.status === 422 && error.details) {
        const shown = showErrors(form, error.details);
        toast(shown ? `Fix ${shown} field${shown > 1 ? "s" : ""} to save` : error.message, { error: true });
      } else toast(error.message, { error: true });
    }
  });
});

(async () => {
  doc = await load(form, () => api("/api/settings"), { lines: 8 });
  if (doc) render();
})();
