// Webhooks: delivery health, the dead-letter queue and replay, pause and resume.

import { api } from "./api.js";
import { clear, el, figures, number, section, table, when } from "./dom.js";

export async function render(root, ctx) {
  const box = el("div", {});
  async function load() {
    const [health, stats, dead] = await Promise.all([api("/admin/webhook-health"), api("/webhooks/stats"), api("/webhooks/dead-letter")]);
    const columns = [
      { label: "#", value: (d) => String(d.index) },
      { label: "Destination", value: (d) => d.url ?? d.destination },
      { label: "Events", value: (d) => number(d.eventCount) },
      { label: "Attempts", value: (d) => number(d.attempts) },
      { label: "Last error", value: (d) => d.lastError ?? "—" },
      { label: "Failed at", value: (d) => when(d.failedAt) },
    ];
    if (ctx.canChange) {
      columns.push({ label: "Replay", value: (d) => el("button", { type: "button", onclick: () => replay([d.index]) }, `Replay #${d.index}`) });
    }
    const controls = ctx.canChange
      ? el(
          "div",
          { class: "row" },
          el("button", { type: "button", id: "replay-all", disabled: !dead.count, onclick: () => replay(null) }, "Replay all dead letters"),
          stats.paused
            ? el("button", { type: "button", onclick: () => post("/webhooks/resume", {}, "Delivery resumed") }, "Resume delivery")
            : el("button", { type: "button", disabled: !stats.configured, onclick: () => post("/webhooks/pause", {}, "Delivery paused") }, "Pause delivery"),
        )
      : null;
    clear(box).append(
      section(
        "Health",
        figures([
          ["Status", health.status],
          ["Delivered", number(health.delivery.totalDelivered)],
          ["Failed", number(health.delivery.totalFailed)],
          ["Pending retries", number(health.delivery.pendingRetries)],
          ["Dead letters", number(health.delivery.deadLetterCount)],
          ["Success rate", `${health.delivery.successRate}%`],
        ]),
        table("Destinations", [
          { label: "URL", value: (d) => d.url ?? "—" },
          { label: "Kind", value: (d) => d.kind ?? d.type ?? "—" },
        ], stats.destinations, "No webhook destination is configured."),
      ),
      section("Dead letters", table("Dead letters", columns, dead.deadLetters, "No dead letters."), controls),
    );
  }
  async function post(path, body, done) {
    try {
      await api(path, { method: "POST", body });
      ctx.notify(done);
      await load();
    } catch (err) {
      ctx.fail(err);
    }
  }
  function replay(indices) {
    return post("/webhooks/replay", indices ? { indices } : {}, "Replayed");
  }
  root.append(box);
  await load();
}
