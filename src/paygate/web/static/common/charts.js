// Charts as SVG built node by node (createElementNS): labels are text nodes, never markup.

import { el } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const COLOURS = ["#1f5fbf", "#b3261e", "#1b7f3b", "#8a4b00"];

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : String(c));
  return node;
}

function frame(title, width, height) {
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart" });
  root.append(svg("title", {}, title));
  return root;
}

// Lines over time: series = [{label, values: [numbers]}], labels = the x positions' names.
export function lineChart(title, labels, series) {
  const W = 420, H = 200, L = 36, B = 24, T = 12, R = 8;
  const root = frame(title, W, H);
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const n = Math.max(1, labels.length - 1);
  const x = (i) => L + ((W - L - R) * i) / n;
  const y = (v) => H - B - ((H - B - T) * v) / max;
  root.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
  root.append(svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
  root.append(svg("text", { x: L - 6, y: T + 8, "text-anchor": "end", class: "tick" }, String(max)));
  root.append(svg("text", { x: L - 6, y: H - B, "text-anchor": "end", class: "tick" }, "0"));
  if (labels.length) {
    root.append(svg("text", { x: L, y: H - 8, class: "tick" }, labels[0]));
    root.append(svg("text", { x: W - R, y: H - 8, "text-anchor": "end", class: "tick" }, labels[labels.length - 1]));
  }
  series.forEach((s, i) => {
    const points = s.values.map((v, j) => `${x(j).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    root.append(svg("polyline", { points, fill: "none", stroke: COLOURS[i % COLOURS.length], "stroke-width": 2 }));
  });
  return figure(title, root, series.map((s, i) => [s.label, COLOURS[i % COLOURS.length]]));
}

// Horizontal bars: items = [{label, value}].
export function barChart(title, items, unit = "") {
  if (!items.length) return el("figure", { class: "chart-box" }, el("figcaption", {}, title), el("p", { class: "empty" }, "No data in this range."));
  const W = 420, row = 26, L = 130, R = 60;
  const H = items.length * row + 8;
  const root = frame(title, W, H);
  const max = Math.max(1, ...items.map((i) => i.value));
  items.forEach((item, i) => {
    const top = 4 + i * row;
    const width = ((W - L - R) * item.value) / max;
    const name = item.label.length > 18 ? item.label.slice(0, 17) + "…" : item.label;
    root.append(svg("text", { x: L - 6, y: top + 16, "text-anchor": "end", class: "tick" }, name));
    root.append(svg("rect", { x: L, y: top + 4, width: Math.max(1, width).toFixed(1), height: row - 10, fill: COLOURS[0] }));
    root.append(svg("text", { x: L + width + 6, y: top + 16, class: "tick" }, `${item.value}${unit}`));
  });
  return figure(title, root, []);
}

function figure(title, chart, legend) {
  const keys = legend.length
    ? el("ul", { class: "legend" }, legend.map(([name, colour]) => el("li", {}, swatch(colour), name)))
    : null;
  return el("figure", { class: "chart-box" }, el("figcaption", {}, title), chart, keys);
}

// Colours go in as SVG attributes: an inline style would be refused by the page's CSP.
function swatch(colour) {
  return svg("svg", { width: 12, height: 12, "aria-hidden": "true" }, svg("rect", { width: 12, height: 12, fill: colour }));
}
