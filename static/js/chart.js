// A tiny SVG chart of our own: bars and/or lines over days, with a y axis, a few x labels and
// a text alternative. Values are numbers; labels are short strings ("Mar 4").

const NS = "http://www.w3.org/2000/svg";

function el(tag, attrs, text) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

// series: [{name, values: number[], type: "bar"|"line", alt?: bool}]
export function chart({ labels, series, title, height = 180, format = (v) => String(v) }) {
  const width = 640;
  const pad = { top: 8, right: 8, bottom: 22, left: 44 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
  const n = Math.max(labels.length, 1);
  const step = plotW / n;
  const y = (v) => pad.top + plotH - (v / max) * plotH;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img",
                          "aria-label": title });
  svg.append(el("title", {}, title));
  for (let i = 0; i <= 4; i++) {
    const value = (max / 4) * i;
    svg.append(el("line", { class: "grid-line", x1: pad.left, x2: width - pad.right, y1: y(value), y2: y(value) }));
    svg.append(el("text", { class: "axis", x: pad.left - 6, y: y(value) + 3, "text-anchor": "end" }, format(value)));
  }
  const every = Math.ceil(n / 7);
  labels.forEach((label, i) => {
    if (i % every !== 0 && i !== n - 1) return;
    svg.append(el("text", { class: "axis", x: pad.left + step * i + step / 2, y: height - 6,
                            "text-anchor": "middle" }, label));
  });
  const bars = series.filter((s) => s.type === "bar");
  const barW = Math.max(1, (step * 0.7) / Math.max(bars.length, 1));
  bars.forEach((s, k) => {
    s.values.forEach((v, i) => {
      const x = pad.left + step * i + step * 0.15 + k * barW;
      const top = y(v);
      const rect = el("rect", { class: "bar" + (s.alt ? " alt" : ""), x: x.toFixed(1), y: top.toFixed(1),
                                width: Math.max(barW - 1, 1).toFixed(1), height: (pad.top + plotH - top).toFixed(1), rx: 1.5 });
      rect.append(el("title", {}, `${labels[i]}: ${format(v)} ${s.name}`));
      svg.append(rect);
    });
  });
  for (const s of series.filter((x) => x.type === "line")) {
    const points = s.values.map((v, i) => `${(pad.left + step * i + step / 2).toFixed(1)},${y(v).toFixed(1)}`);
    if (!points.length) continue;
    if (!s.alt) {
      const first = points[0].split(",")[0];
      const last = points[points.length - 1].split(",")[0];
      svg.append(el("path", { class: "area", d: `M${first},${pad.top + plotH} L${points.join(" L")} L${last},${pad.top + plotH} Z` }));
    }
    svg.append(el("polyline", { class: "line" + (s.alt ? " alt" : ""), points: points.join(" ") }));
  }
  return svg;
}

export function legend(series) {
  const wrap = document.createElement("div");
  wrap.className = "legend";
  for (const s of series) {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    const color = s.type === "bar" ? (s.alt ? "#8bd3a5" : "#4b9ce8") : (s.alt ? "#47c1bf" : "#2c6ecb");
    swatch.style.background = color;
    item.append(swatch, s.name);
    wrap.append(item);
  }
  return wrap;
}

export function shortDate(iso) {
  return new Date(iso + "T12:00:00").toLocaleDateString(undefined, { month: "short", day: "numeric" });
}
