// Analytics: calls and credits over time, deny reasons, revenue by tool and latency by tool, over a range.

import { api, query } from "./api.js";
import { barChart, lineChart } from "./charts.js";
import { clear, el, figures, number, section, selectField } from "./dom.js";

const RANGES = [
  ["24", "Last 24 hours"],
  ["168", "Last 7 days"],
  ["720", "Last 30 days"],
  ["2160", "Last 90 days"],
];

async function charts(hours) {
  const since = new Date(Date.now() - hours * 3600 * 1000).toISOString().slice(0, 13) + ":00:00Z";
  const granularity = hours > 168 ? "daily" : "hourly";
  const range = { since };
  const [usage, denials, revenue, latency, flow] = await Promise.all([
    api("/analytics" + query({ since, granularity })),
    api("/admin/denials" + query(range)),
    api("/admin/revenue" + query(range)),
    api("/admin/latency" + query(range)),
    api("/admin/credit-flow" + query(range)),
  ]);
  const labels = usage.timeSeries.map((b) => b.start.slice(granularity === "daily" ? 0 : 5, granularity === "daily" ? 10 : 16).replace("T", " "));
  return [
    section(
      "Summary",
      figures([
        ["Calls", number(usage.summary.totalCalls)],
        ["Credits", number(usage.summary.totalCredits)],
        ["Denied", number(usage.summary.totalDenied)],
        ["Credits refunded", number(flow.period.creditsRefunded)],
      ]),
    ),
    lineChart("Calls over time", labels, [
      { label: "calls", values: usage.timeSeries.map((b) => b.calls) },
      { label: "denied", values: usage.timeSeries.map((b) => b.denied) },
    ]),
    lineChart("Credit flow: credits spent over time", labels, [{ label: "credits", values: usage.timeSeries.map((b) => b.credits) }]),
    barChart("Deny reasons", Object.entries(denials.byReason).map(([label, value]) => ({ label, value: typeof value === "number" ? value : value.count ?? 0 }))),
    barChart("Revenue by tool (credits)", revenue.byTool.map((t) => ({ label: t.tool, value: t.revenue }))),
    barChart("Latency by tool (p95)", latency.byTool.map((t) => ({ label: t.tool, value: Math.round(t.p95DurationMs) })), " ms"),
  ];
}

export async function render(root, ctx) {
  const out = el("div", { id: "charts", class: "charts" });
  const picker = el("form", { class: "row", "aria-label": "Range" }, selectField("Range", "range", RANGES, "24"), el("button", { type: "submit" }, "Show"));
  picker.addEventListener("submit", (e) => {
    e.preventDefault();
    charts(Number(picker.elements.range.value)).then((c) => clear(out).append(...c), ctx.fail);
  });
  root.append(picker, out);
  out.append(...(await charts(24)));
}
