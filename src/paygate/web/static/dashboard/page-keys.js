// Keys: search, create (the full key shown once), and top up / suspend / resume / revoke / rotate one key
// and edit its ACL and limits (key-edit.js).
// Keys are stored hashed, so the list shows masked keys only; an action names its key by the raw key
// (kept in this page's memory after a create, never stored) or by its alias.

import { ApiError, api, query } from "./api.js";
import { clear, el, field, keyStatus, number, section, selectField, table, tags, when } from "./dom.js";
import { keyEditor } from "./key-edit.js";

// How GET /keys shows a raw key (prefix, ellipsis, last four): a pasted key finds its row this way.
const maskOf = (raw) => `${raw.slice(0, 7)}…${raw.slice(-4)}`;

function parseTags(text) {
  const out = {};
  for (const part of text.split(",")) {
    const [k, ...rest] = part.split("=");
    if (k.trim()) out[k.trim()] = rest.join("=").trim();
  }
  return out;
}

export async function render(root, ctx) {
  const results = el("div", { id: "key-list" });
  const searchForm = el(
    "form",
    { class: "row", role: "search", "aria-label": "Search keys" },
    field("Name starts with", { id: "key-search", name: "key-search", type: "search", autocomplete: "off" }),
    selectField("Status", "key-status", [["", "any"], ["active", "active"], ["suspended", "suspended"], ["expired", "expired"], ["revoked", "revoked"]], ""),
    el("button", { type: "submit" }, "Search"),
  );
  const manage = el("input", { id: "manage-key", name: "manage-key", type: "text", autocomplete: "off", spellcheck: "false" });
  let rows = [];
  let editor = null;

  async function load() {
    const params = { limit: 200, namePrefix: searchForm.elements["key-search"].value.trim(), status: searchForm.elements["key-status"].value };
    const page = await api("/keys" + query(params));
    rows = page.keys;
    const columns = [
      { label: "Name", value: (k) => k.name },
      { label: "Key", value: (k) => k.keyMasked },
      { label: "Alias", value: (k) => k.alias ?? "—" },
      { label: "Status", value: (k) => keyStatus(k) },
      { label: "Credits", value: (k) => number(k.credits) },
      { label: "Spent", value: (k) => number(k.totalSpent) },
      { label: "Calls", value: (k) => number(k.totalCalls) },
      { label: "Tags", value: (k) => tags(k.tags) },
      { label: "Last used", value: (k) => when(k.lastUsedAt) },
    ];
    if (ctx.canChange) {
      columns.push({
        label: "Manage",
        value: (k) =>
          k.alias
            ? el("button", { type: "button", onclick: () => choose(k.alias, k) }, `Manage ${k.alias}`)
            : el("span", { class: "hint" }, "paste the key below"),
      });
    }
    clear(results).append(table(`Keys (${page.total})`, columns, page.keys, "No key matches."));
  }

  // The row of the key in the manage field, when the list shows exactly one that matches.
  function rowOf(ref) {
    const found = rows.filter((k) => k.alias === ref || (ref.startsWith("pg_") && k.keyMasked === maskOf(ref)));
    return found.length === 1 ? found[0] : null;
  }

  function choose(ref, row) {
    manage.value = ref;
    if (editor) editor.fill(row ?? rowOf(ref));
    manage.focus();
  }

  searchForm.addEventListener("submit", (e) => {
    e.preventDefault();
    load().catch(ctx.fail);
  });
  root.append(section("Keys", searchForm, results));
  await load();
  if (!ctx.canChange) return;

  // Create: POST /keys, then POST /keys/alias when an alias is given.
  const shown = el("div", { id: "new-key", class: "once", hidden: true });
  const createForm = el(
    "form",
    { class: "stack", "aria-label": "Create a key" },
    field("Name", { id: "new-name", name: "new-name", required: true, maxlength: 200, autocomplete: "off" }),
    field("Credits", { id: "new-credits", name: "new-credits", type: "number", min: 0, step: 1, value: 0, required: true }),
    field("Tags (name=value, comma separated)", { id: "new-tags", name: "new-tags", autocomplete: "off" }),
    field("Alias (optional: A-Z a-z 0-9 _ -)", { id: "new-alias", name: "new-alias", autocomplete: "off", pattern: "[A-Za-z0-9_\\-]{1,100}" }),
    el("button", { type: "submit" }, "Create key"),
  );
  createForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = createForm.elements;
    try {
      const created = await api("/keys", {
        method: "POST",
        body: { name: f["new-name"].value, credits: Number(f["new-credits"].value), tags: parseTags(f["new-tags"].value) },
      });
      if (f["new-alias"].value) await api("/keys/alias", { method: "POST", body: { key: created.key, alias: f["new-alias"].value } });
      createForm.reset();
      const value = el("output", { id: "new-key-value", class: "secret" }, created.key);
      clear(shown).append(
        el("p", {}, el("strong", {}, `Key for ${created.name}`), " — shown once: copy it now. The gateway keeps only its hash."),
        value,
        el("button", { type: "button", onclick: () => choose(created.key) }, "Manage this key"),
        el("button", { type: "button", onclick: () => { clear(shown); shown.hidden = true; } }, "Done, hide it"),
      );
      shown.hidden = false;
      ctx.notify(`Key created: ${created.name}`);
      await load();
    } catch (err) {
      ctx.fail(err);
    }
  });
  root.append(section("Create a key", createForm, shown));

  // One key's actions.
  const amount = el("input", { id: "topup-credits", name: "topup-credits", type: "number", min: 1, step: 1, value: 100 });
  const reason = el("input", { id: "suspend-reason", name: "suspend-reason", maxlength: 500, autocomplete: "off" });
  const confirmRevoke = el("button", { type: "button", id: "confirm-revoke", class: "danger", hidden: true }, "Yes, revoke it for good");
  const outcome = el("p", { id: "manage-result", role: "status" });

  async function act(path, body, label) {
    const ref = manage.value.trim();
    if (!ref) {
      manage.focus();
      return ctx.notify("Paste a key or its alias first.", true);
    }
    try {
      const answer = await api(path, { method: "POST", body: { key: ref, ...body } });
      outcome.textContent = `${label}: ${answer.keyMasked ?? ""} ${answer.newBalance !== undefined ? `balance ${answer.newBalance}` : ""}`.trim();
      ctx.notify(outcome.textContent);
      await load();
    } catch (err) {
      outcome.textContent = err instanceof ApiError ? `Refused (${err.status}): ${err.message}` : String(err);
      ctx.notify(outcome.textContent, true);
    }
  }

  const revoke = el("button", { type: "button", class: "danger", onclick: () => { confirmRevoke.hidden = false; confirmRevoke.focus(); } }, "Revoke");
  confirmRevoke.addEventListener("click", () => {
    confirmRevoke.hidden = true;
    act("/keys/revoke", {}, "Revoked");
  });
  manage.addEventListener("change", () => editor.fill(rowOf(manage.value.trim())));
  editor = keyEditor(ctx, { get: () => manage.value.trim(), set: (v) => { manage.value = v; }, focus: () => manage.focus() }, async () => {
    await load();
    editor.fill(rowOf(manage.value.trim()));
  });
  root.append(
    section(
      "Manage a key",
      el("div", { class: "field" }, el("label", { for: "manage-key" }, "Key or alias"), manage),
      el("div", { class: "row" }, el("div", { class: "field" }, el("label", { for: "topup-credits" }, "Credits to add"), amount),
        el("button", { type: "button", id: "do-topup", onclick: () => act("/topup", { credits: Number(amount.value) }, "Topped up") }, "Top up")),
      el("div", { class: "row" }, el("div", { class: "field" }, el("label", { for: "suspend-reason" }, "Suspension reason (optional)"), reason),
        el("button", { type: "button", id: "do-suspend", onclick: () => act("/keys/suspend", reason.value ? { reason: reason.value } : {}, "Suspended") }, "Suspend"),
        el("button", { type: "button", id: "do-resume", onclick: () => act("/keys/resume", {}, "Resumed") }, "Resume")),
      el("div", { class: "row" }, revoke, confirmRevoke),
      outcome,
      editor.box,
    ),
  );
}
