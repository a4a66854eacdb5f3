// Safe DOM building: text always goes in as text nodes, attributes through setAttribute; nothing here
// ever parses a string as HTML, so a key name like "<img onerror=…>" is shown as those characters.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export function section(title, ...children) {
  const id = "s-" + title.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return el("section", { class: "card", "aria-labelledby": id }, el("h3", { id }, title), ...children);
}

// A table from column definitions: {label, value: row => text or Node}. Wrapped so it scrolls sideways
// on a narrow screen instead of widening the page.
export function table(caption, columns, rows, empty = "Nothing yet.") {
  if (!rows.length) return el("p", { class: "empty" }, empty);
  const head = el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c.label)));
  const body = rows.map((row) => el("tr", {}, columns.map((c) => el("td", {}, c.value(row)))));
  return el(
    "div",
    { class: "scroll", tabindex: "0", role: "region", "aria-label": caption },
    el("table", {}, el("caption", {}, caption), el("thead", {}, head), el("tbody", {}, body)),
  );
}

// Figures shown as a definition list: [[label, value], …].
export function figures(pairs) {
  return el("dl", { class: "figures" }, pairs.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))));
}

export function field(label, attrs) {
  const id = attrs.id;
  return el("div", { class: "field" }, el("label", { for: id }, label), el("input", attrs));
}

export function selectField(label, id, options, selected) {
  const select = el("select", { id, name: id });
  for (const [value, text] of options) select.append(el("option", { value, selected: value === selected }, text));
  return el("div", { class: "field" }, el("label", { for: id }, label), select);
}

export function number(n) {
  return typeof n === "number" ? n.toLocaleString("en-US") : n === null || n === undefined ? "—" : String(n);
}

export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

export function tags(obj) {
  const pairs = Object.entries(obj || {});
  return pairs.length ? pairs.map(([k, v]) => `${k}=${v}`).join(", ") : "—";
}

export function keyStatus(k) {
  if (!k.active) return "revoked";
  if (k.expired) return "expired";
  if (k.suspended) return "suspended";
  return "active";
}
