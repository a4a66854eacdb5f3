// Overview: keys, credits, calls, revenue, backend status, denials by reason, top tools and consumers, and
// the live call feed.

import { api } from "./api.js";
import { clear, el, figures, number, section, table, when } from "./dom.js";

const FEED_SIZE = 50;

async function summary() {
  const [dash, revenue, health, denials] = await Promise.all([
    api("/admin/dashboard"), api("/admin/revenue"), api("/health"), api("/admin/denials?limit=5"),
  ]);
  const reasons = Object.entries(denials.byReason || {}).map(([reason, count]) => ({ reason, count }));
  const backend = health.backend && health.backend.ready ? "ready" : "not ready";
  return [
    section(
      "Gateway",
      figures([
        ["Status", health.status],
        ["Backend", backend],
        ["Version", health.version],
        ["Uptime", `${number(dash.uptime.uptimeHours)} h`],
      ]),
    ),
    section(
      "Keys",
      figures([
        ["Total", number(dash.keys.total)],
        ["Active", number(dash.keys.active)],
        ["Suspended", number(dash.keys.suspended)],
        ["Revoked", number(dash.keys.revoked)],
      ]),
    ),
    section(
      "Credits",
      figures([
        ["Allocated", number(dash.credits.totalAllocated)],
        ["Spent", number(dash.credits.totalSpent)],
        ["Remaining", number(dash.credits.totalRemaining)],
        ["Revenue", number(revenue.summary.totalRevenue)],
      ]),
    ),
    section(
      "Calls",
      figures([
        ["Total", number(dash.usage.totalCalls)],
        ["Allowed", number(dash.usage.totalAllowed)],
        ["Denied", number(dash.usage.totalDenied)],
        ["Failed", number(dash.usage.totalFailed)],
      ]),
    ),
    section(
      "Denials by reason",
      el("div", { id: "denials" }, table(
        `Denied calls: ${number(denials.summary.totalDenials)} of ${number(denials.summary.totalCalls)}`,
        [
          { label: "Reason", value: (r) => r.reason },
          { label: "Calls", value: (r) => `${number(r.count)} (${Math.round((100 * r.count) / Math.max(1, denials.summary.totalDenials))}%)` },
        ],
        reasons,
        "No call was denied.",
      )),
    ),
    section(
      "Top tools",
      table("Top tools", [
        { label: "Tool", value: (t) => t.tool },
        { label: "Calls", value: (t) => number(t.calls) },
        { label: "Credits", value: (t) => number(t.credits ?? t.creditsSpent) },
      ], dash.topTools),
    ),
    section(
      "Top consumers",
      table("Top consumers", [
        { label: "Name", value: (c) => c.name ?? c.keyName },
        { label: "Key", value: (c) => c.keyMasked ?? c.key },
        { label: "Calls", value: (c) => number(c.calls) },
        { label: "Credits", value: (c) => number(c.credits ?? c.creditsSpent) },
      ], dash.topConsumers),
    ),
  ];
}

function feedItem(event) {
  const m = event.metadata || {};
  const allowed = event.type === "gate.allow";
  return el(
    "li",
    { class: allowed ? "allowed" : "denied", "data-tool": m.tool ?? "" },
    el("time", { datetime: event.timestamp }, when(event.timestamp).slice(11, 19)),
    " ",
    el("strong", {}, m.tool ?? "?"),
    " · ",
    m.keyMasked ?? "no key",
    " · ",
    allowed ? `allowed, ${number(m.credits)} credits` : `denied: ${m.reason ?? "?"}`,
  );
}

export async function render(root, ctx) {
  const cards = el("div", { class: "grid" }, await summary());
  const feed = el("ol", { id: "call-feed", class: "feed", "aria-live": "polite", "aria-relevant": "additions" });
  const empty = el("p", { class: "empty" }, "Tool calls appear here as they happen.");
  root.append(cards, section("Live calls", empty, feed));
  let pending = null;
  ctx.onLive((event) => {
    if (event.type === "gate.allow" || event.type === "gate.deny") {
      empty.hidden = true;
      feed.prepend(feedItem(event));
      while (feed.children.length > FEED_SIZE) feed.lastChild.remove();
    }
    // Figures follow the events, at most once a second.
    if (pending === null) {
      pending = setTimeout(async () => {
        pending = null;
        try {
          clear(cards).append(...(await summary()));
        } catch (err) {
          ctx.fail(err);
        }
      }, 1000);
    }
  });
}
