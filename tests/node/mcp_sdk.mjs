// The npm TypeScript SDK's client API, for scripts outside this folder (tests/clients/ts_client.mjs):
// ESM resolves a bare package name from the importing file's folder, and the SDK lives here.
import { readFileSync } from "node:fs";

export { Client } from "@modelcontextprotocol/sdk/client/index.js";
export { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
export { CreateMessageRequestSchema, ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";

export const SDK_VERSION = JSON.parse(
  readFileSync(new URL("./node_modules/@modelcontextprotocol/sdk/package.json", import.meta.url), "utf8"),
).version;
