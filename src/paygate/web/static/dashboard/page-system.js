// System: the gateway's health, its backend, the store (Redis when used), health score, maintenance.

import { api } from "./api.js";
import { clear, el, field, figures, number, section } from "./dom.js";

export async function render(root, ctx) {
  const box = el("div", {});
  async function load() {
    const [health, status, score, maintenance] = await Promise.all([
      api("/health"), api("/status"), api("/admin/system-health"), api("/maintenance"),
    ]);
    const redis = health.redis
      ? `connected: ${health.redis.connected ? "yes" : "no"}, pub/sub: ${health.redis.pubsub ? "yes" : "no"}`
      : "not used (SQLite store)";
    const parts = [
      section(
        "Gateway",
        figures([
          ["Status", health.status],
          ["Version", health.version],
          ["Uptime", `${number(health.uptime)} s`],
          ["In flight", number(health.inflight)],
          ["Redis", redis],
        ]),
      ),
      section(
        "Backend",
        figures([
          ["Transport", status.backend.transport],
          ["Ready", status.backend.ready ? "yes" : "no"],
          ["Tools", number(status.backend.tools)],
          ["Sessions", number(status.activeSessions)],
          ["Shadow mode", status.shadowMode ? "on" : "off"],
        ]),
      ),
      section(
        "Health score",
        figures([["Score", `${score.score} (${score.level})`], ...Object.entries(score.components).map(([k, c]) => [k, `${c.score}: ${c.detail}`])]),
      ),
    ];
    const state = figures([
      ["Maintenance", maintenance.enabled ? "on" : "off"],
      ["Message", maintenance.message ?? "—"],
      ["Since", maintenance.since ?? "—"],
    ]);
    let controls = null;
    if (ctx.canChange) {
      controls = el(
        "form",
        { class: "row", "aria-label": "Maintenance" },
        field("Message (optional)", { id: "maintenance-message", name: "maintenance-message", maxlength: 500, autocomplete: "off" }),
        el("button", { type: "submit", id: "maintenance-on" }, maintenance.enabled ? "Change message" : "Turn maintenance on"),
        maintenance.enabled ? el("button", { type: "button", id: "maintenance-off", onclick: () => set({ enabled: false }) }, "Turn maintenance off") : null,
      );
      controls.addEventListener("submit", (e) => {
        e.preventDefault();
        const message = controls.elements["maintenance-message"].value.trim();
        set(message ? { enabled: true, message } : { enabled: true });
      });
    }
    parts.push(section("Maintenance", state, controls));
    clear(box).append(...parts);
  }
  async function set(body) {
    try {
      await api("/maintenance", { method: "POST", body });
      ctx.notify(body.enabled ? "Maintenance is on: tool calls get 503." : "Maintenance is off.");
      await load();
    } catch (err) {
      ctx.fail(err);
    }
  }
  root.append(box);
  await load();
}
