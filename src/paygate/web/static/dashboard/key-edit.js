// One key's settings on the keys page: rotate (the new key shown once), tool ACL, spending limit, quota,
// IP allowlist and expiry — each through its documented admin endpoint (POST /keys/rotate, /keys/acl,
// /limits, /keys/quota, /keys/ip, /keys/expiry). Forms send only the fields the operator changed, since
// the API keeps whatever a request leaves out: a list emptied on purpose is sent as [] and clears.

import { ApiError, api } from "./api.js";
import { clear, el, field, number, section, when } from "./dom.js";

const QUOTA = [
  ["dailyCallLimit", "Calls per day"],
  ["monthlyCallLimit", "Calls per month"],
  ["dailyCreditLimit", "Credits per day"],
  ["monthlyCreditLimit", "Credits per month"],
];

// "a, b c" → ["a", "b", "c"]: tools and addresses are separated by commas or spaces.
const list = (text) => text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
const changed = (input) => input.value !== input.defaultValue;

function setDefault(input, value) {
  input.defaultValue = value;
  input.value = value;
}

export function keyEditor(ctx, ref, done) {
  const outcome = el("p", { id: "edit-result", role: "status" });
  const current = el("p", { id: "edit-current", class: "hint" }, "Choose a key with its Manage button to see its settings; blank fields keep theirs.");

  async function send(path, body, label) {
    const key = ref.get();
    if (!key) {
      ref.focus();
      return ctx.notify("Paste a key or its alias first.", true);
    }
    try {
      const answer = await api(path, { method: "POST", body: { key, ...body } });
      outcome.textContent = `${label}: ${answer.message ?? "done"} (${answer.keyMasked ?? answer.oldKeyMasked ?? ""})`;
      ctx.notify(outcome.textContent);
      await done(answer);
      return answer;
    } catch (err) {
      outcome.textContent = err instanceof ApiError ? `Refused (${err.status}): ${err.message}` : String(err);
      ctx.notify(outcome.textContent, true);
      return null;
    }
  }

  // Rotate: the new key replaces the old everywhere it is stored; shown once, then only its hash is kept.
  const rotated = el("div", { id: "rotated-key", class: "once", hidden: true });
  const sure = el("button", { type: "button", id: "confirm-rotate", class: "danger", hidden: true }, "Yes, rotate it now");
  sure.addEventListener("click", async () => {
    sure.hidden = true;
    const wasRaw = ref.get().startsWith("pg_");
    const answer = await send("/keys/rotate", {}, "Rotated");
    if (!answer) return;
    if (wasRaw) ref.set(answer.newKey); // the old raw key names nothing any more
    clear(rotated).append(
      el("p", {}, el("strong", {}, `New key for ${answer.name}`), ` (replaces ${answer.oldKeyMasked}) — shown once: copy it now; the old key is refused from now on.`),
      el("output", { id: "rotated-key-value", class: "secret" }, answer.newKey),
      el("button", { type: "button", onclick: () => { clear(rotated); rotated.hidden = true; } }, "Done, hide it"),
    );
    rotated.hidden = false;
  });
  const rotate = el("button", { type: "button", id: "do-rotate", onclick: () => { sure.hidden = false; sure.focus(); } }, "Rotate");

  // ACL
  const allowed = el("input", { id: "acl-allowed", name: "acl-allowed", autocomplete: "off", spellcheck: "false" });
  const denied = el("input", { id: "acl-denied", name: "acl-denied", autocomplete: "off", spellcheck: "false" });
  const aclForm = el(
    "form",
    { class: "stack", "aria-label": "Tool access" },
    el("div", { class: "field" }, el("label", { for: "acl-allowed" }, "Allowed tools (comma separated; empty: every tool)"), allowed),
    el("div", { class: "field" }, el("label", { for: "acl-denied" }, "Denied tools (comma separated)"), denied),
    el("button", { type: "submit", id: "save-acl" }, "Save tool access"),
  );
  aclForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {};
    if (changed(allowed)) body.allowedTools = list(allowed.value);
    if (changed(denied)) body.deniedTools = list(denied.value);
    if (!Object.keys(body).length) return ctx.notify("Nothing changed.", true);
    if (await send("/keys/acl", body, "Tool access")) {
      setDefault(allowed, allowed.value);
      setDefault(denied, denied.value);
    }
  });

  // Limits: spending cap, quota, IP allowlist, expiry.
  const spending = el("input", { id: "limit-spending", name: "limit-spending", type: "number", min: 0, step: 1 });
  const quota = QUOTA.map(([name]) => el("input", { id: `quota-${name}`, name: `quota-${name}`, type: "number", min: 0, step: 1 }));
  const ips = el("input", { id: "limit-ips", name: "limit-ips", autocomplete: "off", spellcheck: "false" });
  const expiresIn = el("input", { id: "expires-hours", name: "expires-hours", type: "number", min: 1, step: 1 });
  const labelled = (input, text) => el("div", { class: "field" }, el("label", { for: input.id }, text), input);
  const limitsForm = el(
    "form",
    { class: "stack", "aria-label": "Limits" },
    labelled(spending, "Spending limit, credits in all (0: none)"),
    el("fieldset", {}, el("legend", {}, "Quota (0: unlimited)"), el("div", { class: "row" }, quota.map((q, i) => labelled(q, QUOTA[i][1])))),
    labelled(ips, "IP allowlist (addresses or CIDR blocks; empty: any address)"),
    labelled(expiresIn, "Expires in (hours from now)"),
    el("div", { class: "row" },
      el("button", { type: "submit", id: "save-limits" }, "Save limits"),
      el("button", { type: "button", id: "remove-expiry", onclick: () => send("/keys/expiry", { expiresAt: null }, "Expiry") }, "Remove expiry"),
      el("button", { type: "button", id: "remove-quota", onclick: () => send("/keys/quota", { remove: true }, "Quota") }, "Remove own quota")),
  );
  limitsForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const steps = [];
    if (changed(spending) && spending.value !== "") steps.push(["/limits", { spendingLimit: Number(spending.value) }, "Spending limit"]);
    const q = {};
    quota.forEach((input, i) => { if (changed(input) && input.value !== "") q[QUOTA[i][0]] = Number(input.value); });
    if (Object.keys(q).length) steps.push(["/keys/quota", q, "Quota"]);
    if (changed(ips)) steps.push(["/keys/ip", { ips: list(ips.value) }, "IP allowlist"]);
    if (expiresIn.value !== "") steps.push(["/keys/expiry", { expiresIn: Number(expiresIn.value) * 3600 }, "Expiry"]);
    if (!steps.length) return ctx.notify("Nothing changed.", true);
    // one request per setting, stopping at the first refusal (the API validates each in full first)
    for (const [path, body, label] of steps) if (!(await send(path, body, label))) return;
    for (const input of [spending, ...quota, ips]) setDefault(input, input.value);
    expiresIn.value = "";
  });

  // Show a key's settings (a row of GET /keys) in the forms; null: the key is not in the list shown.
  function fill(row) {
    for (const input of [allowed, denied, spending, ...quota, ips]) setDefault(input, "");
    if (!row) {
      current.textContent = "This key's settings are not in the list above: blank fields keep theirs.";
      return;
    }
    setDefault(allowed, (row.allowedTools || []).join(", "));
    setDefault(denied, (row.deniedTools || []).join(", "));
    setDefault(spending, String(row.spendingLimit || 0));
    QUOTA.forEach(([name], i) => setDefault(quota[i], String((row.quota && row.quota[name]) || 0)));
    setDefault(ips, (row.ipAllowlist || []).join(", "));
    current.textContent = `Settings of ${row.name} (${row.keyMasked}): expires ${row.expiresAt ? when(row.expiresAt) : "never"}, spent ${number(row.totalSpent)}.`;
  }

  const box = el("div", {},
    el("div", { class: "row" }, rotate, sure), rotated,
    section("Tool access", aclForm),
    section("Limits", limitsForm),
    current, outcome,
  );
  return { box, fill };
}
