// The key holder's portal: balance, quota and rate-limit status, the tools this key may call and their
// prices, credit history with a chart and spending velocity, the low-balance alert, buying credits with
// Stripe Checkout, and rotating the key (POST /portal/rotate). A client of the documented client
// endpoints only (GET /balance, /balance/history, /balance/rate-limit-status, /balance/alerts, /pricing,
// /stripe/packages, POST /stripe/checkout), signed in with the key (sent in X-API-Key) or through OAuth
// (oauth.js: the access token sent as a Bearer token). Either lives in sessionStorage (this tab only),
// never in a cookie or a URL.

import { lineChart } from "./charts.js";
import { append, clear, el, field, figures, number, section, table, when } from "./dom.js";
import { finishSignIn, oauthMetadata, revoke, startSignIn } from "./oauth.js";

const STORE = "paygate.apiKey";
const TOKENS = "paygate.oauthTokens";
const $ = (id) => document.getElementById(id);

const oauthTokens = () => JSON.parse(sessionStorage.getItem(TOKENS) || "null");

function credential() {
  const tokens = oauthTokens();
  if (tokens) return { Authorization: `Bearer ${tokens.access}` };
  return { "X-API-Key": sessionStorage.getItem(STORE) || "" };
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: credential(), cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, (data && data.error) || `HTTP ${response.status}`);
  return data;
}

function notify(message, isError = false) {
  $("notice").textContent = message;
  $("notice").classList.toggle("error", isError);
}

function fail(err) {
  if (err instanceof ApiError && err.status === 401) return signOut(oauthTokens() ? "Your sign-in has expired or was revoked; sign in again." : "This key was refused; sign in again.");
  notify(err instanceof Error ? err.message : String(err), true);
}

// quotaUsage: {daily: {calls: {used, limit, remaining}, credits: {…}, resetsAt}, monthly: {…}}
function quotaRows(balance) {
  const rows = [];
  for (const [period, usage] of Object.entries(balance.quotaUsage || {})) {
    for (const kind of ["calls", "credits"]) {
      const u = usage[kind];
      if (u && u.limit) rows.push([`${kind[0].toUpperCase()}${kind.slice(1)} ${period}`, `${number(u.used)} of ${number(u.limit)}`]);
    }
  }
  return rows;
}

function balanceSection(b) {
  const status = b.suspended ? "suspended" : "active";
  const pairs = [
    ["Credits", number(b.credits)],
    ["Spent", number(b.totalSpent)],
    ["Calls", number(b.totalCalls)],
    ["Status", status],
    ["Last used", when(b.lastUsedAt)],
    ["Expires", b.expiresAt ? when(b.expiresAt) : "never"],
  ];
  if (b.spendingLimit) pairs.push(["Spending limit", `${number(b.remainingBudget)} left of ${number(b.spendingLimit)}`]);
  const quotas = quotaRows(b);
  return section("Balance", el("p", { id: "balance-credits", class: "big" }, `${number(b.credits)} credits`), figures([...pairs, ...quotas]));
}

// GET /balance/rate-limit-status: the key's calls-per-minute windows, global and per tool (peeked: looking
// uses no slot).
function rateSection(rates) {
  const row = (name, w) => ({ name, ...w });
  const rows = [row("All tools", rates.global), ...Object.entries(rates.perTool || {}).map(([tool, w]) => row(tool, w))];
  return section(
    "Rate limits",
    table("Calls per minute", [
      { label: "Applies to", value: (w) => w.name },
      { label: "Used", value: (w) => (w.limit ? `${number(w.used)} of ${number(w.limit)}` : "no limit") },
      { label: "Left", value: (w) => (w.limit ? number(w.remaining) : "—") },
      { label: "Resets in", value: (w) => (w.limit && w.used ? `${Math.ceil(w.resetInMs / 1000)} s` : "—") },
    ], rows),
  );
}

function toolsSection(b, pricing) {
  const allowed = new Set(b.allowedTools || []);
  const denied = new Set(b.deniedTools || []);
  const may = (name) => !denied.has(name) && (allowed.size === 0 || allowed.has(name));
  const tools = (pricing.tools || []).map((t) => ({ ...t, may: may(t.name) }));
  return section(
    "Tools and prices",
    table("Tools this gateway offers", [
      { label: "Tool", value: (t) => t.name },
      { label: "Credits per call", value: (t) => number(t.creditsPerCall) },
      { label: "Your key", value: (t) => (t.may ? "may call" : "not allowed") },
    ], tools, "No tools are listed."),
  );
}

function historySection(history) {
  const entries = history.entries;
  const oldestFirst = [...entries].reverse();
  const v = history.velocity || {};
  return section(
    "Credit history",
    figures([
      ["Credits per hour", number(v.creditsPerHour)],
      ["Credits per day", number(v.creditsPerDay)],
      ["Calls per day", number(v.callsPerDay)],
      ["Runs out", v.estimatedDepletionDate ? when(v.estimatedDepletionDate) : "not at this pace"],
    ]),
    oldestFirst.length > 1
      ? lineChart("Balance after each movement", oldestFirst.map((e) => when(e.timestamp).slice(5, 16)), [
          { label: "balance", values: oldestFirst.map((e) => e.balanceAfter) },
        ])
      : null,
    table(`Latest ${entries.length} of ${history.total} movements`, [
      { label: "Time", value: (e) => when(e.timestamp) },
      { label: "Type", value: (e) => e.type },
      { label: "Amount", value: (e) => number(e.amount) },
      { label: "Balance after", value: (e) => number(e.balanceAfter) },
      { label: "Memo", value: (e) => e.memo ?? "—" },
    ], entries, "No credit movement yet."),
  );
}

function alertSection(alerts) {
  const form = el(
    "form",
    { class: "row", "aria-label": "Low-balance alert" },
    field("Alert me at or below (credits)", {
      id: "alert-threshold", name: "alert-threshold", type: "number", min: 0, max: 1000000, step: 1,
      value: alerts.alert ? alerts.alert.lowCreditThreshold : 10, required: true,
    }),
    el("button", { type: "submit", id: "alert-save" }, alerts.configured ? "Change alert" : "Set alert"),
    alerts.configured ? el("button", { type: "button", id: "alert-remove", onclick: () => change("DELETE") }, "Remove alert") : null,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    change("POST", { lowCreditThreshold: Number(form.elements["alert-threshold"].value) });
  });
  const state = alerts.configured
    ? `On: at or below ${number(alerts.alert.lowCreditThreshold)} credits the gateway notifies its webhooks (key.balance_low).`
    : "No alert is set.";
  return section("Low-balance alert", el("p", { id: "alert-state" }, state), form);
}

function price(p) {
  const amount = (p.priceInCents / 100).toFixed(2);
  return `${amount} ${(p.currency || "usd").toUpperCase()}`;
}

// Buy credits: POST /stripe/checkout answers a Stripe Checkout URL to send the buyer to; the credits arrive
// when Stripe's signed webhook reaches the gateway (docs/payments.md), so the balance moves after the
// payment, not here.
function buySection(catalogue) {
  if (!catalogue.configured || !catalogue.packages.length) return null;
  const outcome = el("p", { id: "buy-result", role: "status" });
  async function buy(pkg) {
    try {
      const session = await api("/stripe/checkout", { method: "POST", body: { packageId: pkg.id } });
      const target = new URL(session.url);
      if (target.protocol !== "https:") throw new Error("Checkout answered an address that is not https");
      outcome.textContent = `Opening Stripe Checkout for ${pkg.name ?? pkg.id}…`;
      window.location.assign(target.href);
    } catch (err) {
      outcome.textContent = err.message;
      fail(err);
    }
  }
  return section(
    "Buy credits",
    table("Credit packages", [
      { label: "Package", value: (p) => p.name ?? p.id },
      { label: "Credits", value: (p) => number(p.credits) },
      { label: "Price", value: (p) => price(p) },
      { label: "Buy", value: (p) => el("button", { type: "button", "data-package": p.id, onclick: () => buy(p) }, `Buy ${p.name ?? p.id}`) },
    ], catalogue.packages),
    el("p", { class: "hint" }, "Payment is taken by Stripe; the credits are added when Stripe confirms it."),
    outcome,
  );
}

// Rotation: POST /portal/rotate. The new key is shown once and becomes this tab's key; the old one is
// refused from then on, everywhere it is used.
function rotateSection() {
  if (oauthTokens()) {
    return section("Rotate your key", el("p", { id: "rotate-needs-key" }, "Rotation needs the key itself (a sign-in token cannot replace the key it stands for): sign in with your API key to rotate it."));
  }
  const shown = el("div", { id: "rotated", class: "once", hidden: true });
  const sure = el("button", { type: "button", id: "rotate-confirm", class: "danger", hidden: true }, "Yes, replace my key now");
  sure.addEventListener("click", async () => {
    sure.hidden = true;
    try {
      const rotated = await api("/portal/rotate", { method: "POST" });
      sessionStorage.setItem(STORE, rotated.newKey);
      await load();
      const box = $("rotated");
      append(clear(box), [
        el("p", {}, el("strong", {}, "Your new key"), ` (replaces ${rotated.oldKeyMasked}) — shown once: copy it now and update every client that uses the old one, which no longer works.`),
        el("output", { id: "new-key-value", class: "secret" }, rotated.newKey),
        el("button", { type: "button", onclick: () => { clear(box); box.hidden = true; } }, "Done, hide it"),
      ]);
      box.hidden = false;
      notify("Key rotated.");
    } catch (err) {
      fail(err);
    }
  });
  return section(
    "Rotate your key",
    el("p", {}, "A new key takes over your balance, limits and history; the current key stops working at once."),
    el("div", { class: "row" }, el("button", { type: "button", id: "rotate", onclick: () => { sure.hidden = false; sure.focus(); } }, "Rotate my key"), sure),
    shown,
  );
}

async function change(method, body) {
  try {
    await api("/balance/alerts", { method, body });
    notify(method === "DELETE" ? "Alert removed." : "Alert saved.");
    await load();
  } catch (err) {
    fail(err);
  }
}

async function load() {
  const [balance, history, alerts, pricing, catalogue, rates] = await Promise.all([
    api("/balance"), api("/balance/history?limit=50"), api("/balance/alerts"), api("/pricing"), api("/stripe/packages"),
    api("/balance/rate-limit-status"),
  ]);
  const how = oauthTokens() ? " · through OAuth" : "";
  $("who").textContent = `Signed in: ${balance.name} (${history.key})${how}`;
  append(clear($("main")), [
    el("div", { class: "grid" }, balanceSection(balance), rateSection(rates), alertSection(alerts)),
    buySection(catalogue),
    toolsSection(balance, pricing),
    historySection(history),
    rotateSection(),
  ]);
}

function signOut(message = "") {
  const tokens = oauthTokens();
  if (tokens) revoke(tokens); // ends the grant on the gateway too; not awaited: signing out never waits
  sessionStorage.removeItem(TOKENS);
  sessionStorage.removeItem(STORE);
  for (const id of ["main", "sign-out", "refresh"]) $(id).hidden = true;
  clear($("main"));
  $("who").textContent = "";
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
  notify("");
  $("api-key").focus();
}

async function signIn(key) {
  sessionStorage.removeItem(TOKENS);
  sessionStorage.setItem(STORE, key);
  try {
    await load();
  } catch (err) {
    sessionStorage.removeItem(STORE);
    throw new Error(err instanceof ApiError && err.status === 401 ? "That key was refused." : err.message);
  }
  signedIn();
}

async function signInWithTokens(tokens) {
  sessionStorage.removeItem(STORE);
  sessionStorage.setItem(TOKENS, JSON.stringify(tokens));
  try {
    await load();
  } catch (err) {
    sessionStorage.removeItem(TOKENS);
    throw new Error(err instanceof ApiError && err.status === 401 ? "The sign-in token was refused." : err.message);
  }
  signedIn();
}

function signedIn() {
  $("sign-in").hidden = true;
  for (const id of ["main", "sign-out", "refresh"]) $(id).hidden = false;
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  try {
    await signIn($("api-key").value.trim());
    $("api-key").value = "";
  } catch (err) {
    $("sign-in-error").textContent = err.message;
  }
});
$("sign-out").addEventListener("click", () => signOut("Signed out."));
$("refresh").addEventListener("click", () => load().then(() => notify("Up to date."), fail));

// OAuth is offered when the gateway has it on (its metadata answers).
oauthMetadata().then((meta) => {
  if (!meta) return;
  const button = $("oauth-sign-in");
  button.hidden = false;
  $("oauth-choice").hidden = false;
  button.addEventListener("click", () => {
    $("sign-in-error").textContent = "";
    startSignIn(meta).catch((err) => { $("sign-in-error").textContent = err.message; });
  });
}, () => null);

async function start() {
  const returned = await finishSignIn(); // null unless this load is the way back from the consent page
  if (returned) return signInWithTokens(returned);
  if (oauthTokens()) return signInWithTokens(oauthTokens());
  if (sessionStorage.getItem(STORE)) return signIn(sessionStorage.getItem(STORE));
  signOut();
}
start().catch((err) => signOut(err.message));
