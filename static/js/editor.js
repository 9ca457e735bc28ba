// The message editor: a textarea with insert tools (merge tag, discount code, link), a live
// counter of characters/segments/encoding for the text as it will be sent, the characters that
// force UCS-2 highlighted, and one click to replace them with their GSM-7 look-alikes.
import { confirmModal, page } from "./bridge.js";
import { analyse, isGsmChar, suggestGsm } from "./sms.js";
import { field, h, replace } from "./ui.js";

const SAMPLE = { first_name: "Alex", last_name: "Kim", discount_code: "SMS-7KQ2M9XA" };
const URL_RE = /https?:\/\/[^\s<>"'{}|\\^`]+/gi;
const TAG_RE = /\{\{|\}\}|\{\s*([a-z_]+)\s*(?:\|([^{}]*))?\}/gi;
const TAG_LABELS = { first_name: "First name", last_name: "Last name", shop_name: "Shop name",
                     brand: "Brand", discount_code: "Discount code", checkout_url: "Checkout link",
                     shop_url: "Shop link" };

// The text roughly as a subscriber receives it: sample merge values, links as long as our
// short links, the brand prefix. The server's estimate is the authority; this is the guide.
export function previewText(body, ctx) {
  const values = { ...SAMPLE, shop_name: ctx.shopName || "", brand: ctx.brand || "",
                   checkout_url: `https://${ctx.shopDomain || "shop.example"}/checkouts/c/1`,
                   shop_url: `https://${ctx.shopDomain || "shop.example"}/`, ...(ctx.values || {}) };
  let text = body.replace(TAG_RE, (match, name, fallback) => {
    if (match === "{{") return "{";
    if (match === "}}") return "}";
    const key = name.toLowerCase();
    return values[key] || (fallback || "").trim();
  }).replace(/ {2,}/g, " ").trim();
  const link = `${(ctx.appUrl || "").replace(/\/$/, "")}/r/${"x".repeat(ctx.shortLinkLen || 10)}`;
  text = text.replace(URL_RE, () => link);
  const brand = (ctx.brand || "").trim();
  if (brand && !text.toLowerCase().startsWith(brand.toLowerCase())) text = `${brand}: ${text}`;
  return text;
}

let editorSeq = 0;

// options: {label, name (error path), value, tags, ctx, onChange(text), maxSegments, allowDiscount}
export function messageEditor(options) {
  const id = `message-${++editorSeq}`;
  const replacements = page.gsmReplacements || {};
  const area = h("textarea", { id, rows: 5, class: "message-body", spellcheck: "true" }, options.value || "");
  const counter = h("div", { class: "counter", id: `${id}-count`, "aria-live": "polite" });
  const note = h("div", { class: "ucs2-note", hidden: true });
  const tags = options.tags || page.mergeTags || [];
  const tagSelect = h("select", { "aria-label": "Insert merge tag", style: "width:auto", id: `${id}-tag` },
    h("option", { value: "" }, "Insert merge tag…"),
    tags.map((t) => h("option", { value: t }, TAG_LABELS[t] || t)));
  const insert = (text) => {
    const start = area.selectionStart ?? area.value.length;
    const end = area.selectionEnd ?? start;
    area.value = area.value.slice(0, start) + text + area.value.slice(end);
    area.focus();
    area.setSelectionRange(start + text.length, start + text.length);
    update();
  };
  tagSelect.addEventListener("change", () => {
    if (tagSelect.value) insert(`{${tagSelect.value}${tagSelect.value === "first_name" ? "|there" : ""}}`);
    tagSelect.value = "";
  });
  const toolbar = h("div", { class: "toolbar", role: "toolbar", "aria-label": "Insert into the message" },
    tagSelect,
    options.allowDiscount !== false ? h("button", { type: "button", class: "btn btn-sm",
      onclick: () => insert("{discount_code}") }, "Insert discount code") : null,
    h("button", { type: "button", class: "btn btn-sm", onclick: async () => {
      const input = h("input", { type: "url", placeholder: `https://${options.ctx().shopDomain || "your-shop.com"}/collections/sale` });
      const ok = await confirmModal({ title: "Insert a link", confirmLabel: "Insert link",
        body: h("div", {}, field("Link to a page of your store", input,
          { help: "It is shortened and tracked when the text is sent." })) });
      const url = input.value.trim();
      if (ok && /^https?:\/\//i.test(url)) insert((area.value && !/\s$/.test(area.value) ? " " : "") + url);
    } }, "Insert link"));

  function update() {
    const ctx = options.ctx();
    const sent = previewText(area.value, ctx);
    const info = analyse(sent);
    const max = options.maxSegments || 4;
    replace(counter,
      h("span", {}, h("strong", {}, String(Array.from(sent).length)), " characters"),
      h("span", { class: info.segments > max ? "warn" : "" }, h("strong", {}, String(info.segments)),
        info.segments === 1 ? " segment" : " segments", info.segments > max ? ` (limit ${max})` : ""),
      h("span", { class: info.encoding === "UCS-2" ? "warn" : "" }, h("strong", {}, info.encoding)),
      h("span", {}, `${info.chars_left} left in this segment`));
    const unique = [...new Set(Array.from(area.value).filter((c) => !isGsmChar(c)))];
    if (unique.length) {
      const fixable = unique.filter((c) => Object.prototype.hasOwnProperty.call(replacements, c));
      const mirror = h("div", { class: "mirror", "aria-hidden": "true" },
        Array.from(area.value).map((c) => (isGsmChar(c) ? c : h("mark", {}, c === "\t" ? "⇥" : c))));
      replace(note,
        h("strong", {}, "These characters make the whole text UCS-2 (70 characters per segment instead of 160): "),
        unique.map((c) => h("mark", { title: `U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}` },
          c === "\t" ? "tab" : c === "\u00a0" ? "no-break space" : c)).flatMap((m) => [m, " "]),
        mirror,
        fixable.length ? h("div", { style: "margin-top:.375rem" }, h("button", { type: "button", class: "btn btn-sm",
          onclick: () => { area.value = suggestGsm(area.value, replacements); update(); area.focus(); } },
          `Replace ${fixable.length === unique.length ? "them" : fixable.length + " of them"} with GSM characters`)) : null);
      note.hidden = false;
    } else {
      note.hidden = true;
    }
    if (options.onChange) options.onChange(area.value, sent, info);
  }
  area.addEventListener("input", update);
  const wrapper = field(options.label || "Message", area, { name: options.name });
  wrapper.insertBefore(toolbar, area);
  area.after(counter);
  counter.after(note);
  wrapper.update = update;
  wrapper.textarea = area;
  wrapper.value = () => area.value;
  setTimeout(update, 0);
  return wrapper;
}

export function phonePreview(brand) {
  const bubble = h("div", { class: "bubble" });
  const screen = h("div", { class: "phone-screen" }, h("div", { class: "phone-head" }, brand || "Your store"), bubble);
  const el = h("figure", { class: "phone", style: "margin:0 auto" },
    h("figcaption", { class: "visually-hidden" }, "Preview on a phone"), screen);
  el.show = (text) => { bubble.textContent = text || "Your message appears here."; };
  return el;
}
