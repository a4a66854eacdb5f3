// System: the gateway's health, its backend, the store (Redis when used), health score, the traffic
// controls' state (circuit breakers, response cache, concurrency), maintenance.

import { api } from "./api.js";
import { clear, el, field, figures, number, section, table } from "./dom.js";

const onOff = (on) => (on ? "on" : "off");

function circuitSection(c, ctx, act) {
  const rows = Object.entries(c.breakers || {}).map(([name, b]) => ({ name, ...b }));
  return section(
    "Circuit breakers",
    figures([
      ["Breakers", c.enabled ? `on (${c.scope})` : "off"],
      ["State", el("span", { id: "circuit-state" }, c.state ?? "closed")],
      ["Threshold", c.enabled ? `${number(c.threshold)} failures` : "—"],
      ["Cooldown", `${number(c.cooldownSeconds)} s`],
      ["Refused while open", number(c.rejections)],
    ]),
    table("Breakers", [
      { label: "Breaker", value: (b) => b.name },
      { label: "State", value: (b) => b.state },
      { label: "Failures", value: (b) => `${number(b.failures)} of ${number(b.threshold)}` },
      { label: "Refused", value: (b) => number(b.rejections) },
      { label: "Opened", value: (b) => number(b.timesOpened) },
      { label: "Retry after", value: (b) => (b.state === "closed" ? "—" : `${Number(b.retryAfterSeconds).toFixed(1)} s`) },
    ], rows, "No call has gone through a breaker yet."),
    ctx.canChange && rows.length
      ? el("button", { type: "button", id: "circuit-reset", onclick: () => act("/admin/circuit", "POST", {}, "Breakers reset to closed.") }, "Reset all breakers")
      : null,
  );
}

function cacheSection(c, ctx, act) {
  const rows = Object.entries(c.tools || {}).map(([tool, t]) => ({ tool, ...t }));
  return section(
    "Response cache",
    figures([
      ["Cache", onOff(c.enabled)],
      ["TTL", `${number(c.ttlSeconds)} s`],
      ["Entries", `${number(c.entries)} of ${number(c.maxEntries)}`],
      ["Size", `${number(c.bytes)} bytes`],
      ["Hit rate", c.hits + c.misses ? `${Math.round(100 * c.hitRate)}% (${number(c.hits)} hits)` : "—"],
    ]),
    table("Cache by tool", [
      { label: "Tool", value: (t) => t.tool },
      { label: "Entries", value: (t) => number(t.entries) },
      { label: "Hits", value: (t) => number(t.hits) },
      { label: "Misses", value: (t) => number(t.misses) },
    ], rows, "Nothing cached."),
    ctx.canChange && c.entries
      ? el("button", { type: "button", id: "cache-clear", onclick: () => act("/admin/cache", "DELETE", undefined, "Cache cleared.") }, "Clear the cache")
      : null,
  );
}

function concurrencySection(c) {
  const limit = (n) => (n ? number(n) : "no limit");
  return section(
    "Concurrency",
    figures([
      ["Per key", limit(c.maxConcurrentPerKey)],
      ["Per tool", limit(c.maxConcurrentPerTool)],
      ["In flight", el("span", { id: "concurrency-in-flight" }, number(c.inFlight.total))],
      ["Queued", number(c.queued)],
      ["Refused", number(c.rejections.total)],
    ]),
    table("Busiest keys", [
      { label: "Name", value: (k) => k.name },
      { label: "Key", value: (k) => k.key },
      { label: "In flight", value: (k) => number(k.inFlight) },
    ], c.inFlight.byKey || [], "No call in flight."),
  );
}

export async function render(root, ctx) {
  const box = el("div", {});
  async function load() {
    const [health, status, score, maintenance, circuit, cache, concurrency] = await Promise.all([
      api("/health"), api("/status"), api("/admin/system-health"), api("/maintenance"),
      api("/admin/circuit"), api("/admin/cache"), api("/admin/concurrency"),
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
      circuitSection(circuit, ctx, act),
      cacheSection(cache, ctx, act),
      concurrencySection(concurrency),
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
  async function act(path, method, body, done) {
    try {
      await api(path, { method, body });
      ctx.notify(done);
      await load();
    } catch (err) {
      ctx.fail(err);
    }
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
