// Live events from GET /admin/events, read with fetch() and a stream reader: EventSource cannot send the
// X-Admin-Key header. When the stream cannot be opened or breaks, GET /requests is polled every 5 s for
// new tool calls instead, and the stream is tried again after 30 s.

import { headers, api } from "./api.js";

const POLL_MS = 5000;
const RETRY_MS = 30000;

export function liveEvents(onEvent, onState) {
  let stopped = false;
  let controller = null;
  let timer = null;
  let lastPolled = null;

  function parse(block) {
    let type = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) type = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (type !== "audit" || !data.length) return;
    try {
      onEvent(JSON.parse(data.join("\n")));
    } catch {
      // a malformed message is skipped, the stream goes on
    }
  }

  async function stream() {
    controller = new AbortController();
    const response = await fetch("/admin/events", { headers: headers(), signal: controller.signal, cache: "no-store", credentials: "omit" });
    if (!response.ok || !response.body) throw new Error(`stream: HTTP ${response.status}`);
    onState("live");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        parse(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
    throw new Error("stream ended");
  }

  // The request log's entries, made to look like the stream's gate events.
  async function poll() {
    const page = await api("/requests?limit=20");
    const fresh = page.requests.filter((r) => lastPolled === null || r.id > lastPolled).reverse();
    if (lastPolled !== null) {
      for (const r of fresh) {
        const allowed = r.status === "allowed";
        onEvent({
          id: r.id,
          timestamp: r.timestamp,
          type: allowed ? "gate.allow" : "gate.deny",
          metadata: { tool: r.tool, keyMasked: r.key, credits: r.credits, reason: allowed ? undefined : r.status },
        });
      }
    }
    if (page.requests.length) lastPolled = Math.max(lastPolled ?? 0, ...page.requests.map((r) => r.id));
  }

  async function pollFor(ms) {
    onState("polling");
    const until = Date.now() + ms;
    while (!stopped && Date.now() < until) {
      try {
        await poll();
      } catch {
        onState("offline");
      }
      await new Promise((resolve) => (timer = setTimeout(resolve, POLL_MS)));
    }
  }

  (async () => {
    while (!stopped) {
      try {
        await stream();
      } catch {
        if (stopped) return;
      }
      await pollFor(RETRY_MS);
    }
  })();

  return {
    stop() {
      stopped = true;
      if (controller) controller.abort();
      clearTimeout(timer);
    },
  };
}
