// Preloaded into the conformance suite's Node process (NODE_OPTIONS=--import=…) when it runs
// through the gateway: every fetch() the suite makes carries the gateway API key in $PAYGATE_API_KEY,
// as any MCP client configured with a key would send it. The suite has no header option of its own.
const key = process.env.PAYGATE_API_KEY;
if (!key) throw new Error("api_key.mjs: PAYGATE_API_KEY is not set");
const originalFetch = globalThis.fetch;
globalThis.fetch = (input, init = {}) => {
  const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
  headers.set("X-API-Key", key);
  return originalFetch(input, { ...init, headers });
};
