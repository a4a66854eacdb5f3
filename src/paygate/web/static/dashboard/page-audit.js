// Audit log: newest first, filtered by event types and actor.

import { api, query } from "./api.js";
import { clear, el, field, section, selectField, table, when } from "./dom.js";

export async function render(root, ctx) {
  const out = el("div", { id: "audit-list" });
  const form = el(
    "form",
    { class: "row", role: "search", "aria-label": "Filter the audit log" },
    field("Types (comma separated)", { id: "audit-types", name: "audit-types", autocomplete: "off", placeholder: "key.created,key.revoked" }),
    field("Actor", { id: "audit-actor", name: "audit-actor", autocomplete: "off" }),
    selectField("Entries", "audit-limit", [["50", "50"], ["100", "100"], ["500", "500"]], "100"),
    el("button", { type: "submit" }, "Show"),
  );
  async function load() {
    const f = form.elements;
    const page = await api("/audit" + query({ types: f["audit-types"].value.trim(), actor: f["audit-actor"].value.trim(), limit: f["audit-limit"].value }));
    clear(out).append(
      table(`Audit entries (${page.count} of ${page.total})`, [
        { label: "#", value: (e) => String(e.id) },
        { label: "Time", value: (e) => when(e.timestamp) },
        { label: "Type", value: (e) => e.type },
        { label: "Actor", value: (e) => e.actor },
        { label: "Message", value: (e) => e.message },
      ], page.events, "No entry matches."),
    );
  }
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    load().catch(ctx.fail);
  });
  root.append(section("Entries", form, out));
  await load();
}
