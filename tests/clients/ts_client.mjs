// An MCP client on the official TypeScript SDK (@modelcontextprotocol/sdk, npm, pinned in
// tests/node/package.json), driving server-everything through the gateway.
//
// Usage: node ts_client.mjs PLAN_JSON. The plan (tests/e2e/test_sdk_clients.py) names the gateway's
// URL, an API key, the tools, their arguments and what to answer. Prints one JSON report on stdout.
// Over Streamable HTTP with X-API-Key (requestInit headers): sampling and elicitation handlers,
// progress via onprogress, cancellation via an AbortSignal (the SDK then sends notifications/cancelled).
import {
  Client,
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  SDK_VERSION,
  StreamableHTTPClientTransport,
} from "../node/mcp_sdk.mjs";

const texts = (result) => result.content.filter((c) => c.type === "text").map((c) => c.text);

async function cancelMidway(client, plan) {
  // Start the long call, abort it at its first progress step.
  const controller = new AbortController();
  const outcome = {};
  try {
    const result = await client.callTool(
      { name: plan.cancel.tool, arguments: plan.cancel.arguments },
      undefined,
      { signal: controller.signal, onprogress: () => controller.abort("the user changed their mind") },
    );
    outcome.result = texts(result);
  } catch (error) {
    outcome.error = { code: error.code ?? null, message: String(error.message ?? error) };
  }
  return outcome;
}

async function run(plan) {
  const sampled = [];
  const elicited = [];
  const clientErrors = [];
  const client = new Client(
    { name: "paygate-ts-client", version: "1.0.0" },
    { capabilities: { sampling: {}, elicitation: { form: {} } } },
  );
  client.onerror = (error) => clientErrors.push(String(error.message ?? error));
  client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
    const { messages, systemPrompt, maxTokens } = request.params;
    sampled.push({ text: messages[0].content.text ?? null, systemPrompt, maxTokens });
    const { model, text } = plan.sampling.answer;
    return { role: "assistant", model, content: { type: "text", text } };
  });
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    const { message, requestedSchema } = request.params;
    elicited.push({ message, required: requestedSchema?.required ?? null });
    return { action: "accept", content: plan.elicitation.answer };
  });

  const transport = new StreamableHTTPClientTransport(new URL(plan.url), {
    requestInit: { headers: { "X-API-Key": plan.key } },
  });
  await client.connect(transport);
  const report = {
    client: { name: "@modelcontextprotocol/sdk (TypeScript)", version: SDK_VERSION },
    protocolVersion: transport.protocolVersion ?? null,
  };
  try {
    const sampling = await client.callTool({ name: plan.sampling.tool, arguments: plan.sampling.arguments });
    report.sampling = { asked: sampled, result: texts(sampling), isError: sampling.isError ?? false };

    const elicitation = await client.callTool({ name: plan.elicitation.tool, arguments: {} });
    report.elicitation = { asked: elicited, result: texts(elicitation), isError: elicitation.isError ?? false };

    const seen = [];
    const progressed = await client.callTool(
      { name: plan.progress.tool, arguments: plan.progress.arguments },
      undefined,
      { onprogress: ({ progress, total }) => seen.push([progress, total ?? null]) },
    );
    report.progress = { seen, result: texts(progressed) };

    report.cancellation = await cancelMidway(client, plan);
    const after = await client.callTool({ name: "echo", arguments: { message: "after the cancellation" } });
    report.cancellation.after = texts(after);
  } finally {
    await transport.terminateSession();
    await client.close();
  }
  report.clientErrors = clientErrors;
  return report;
}

const report = await run(JSON.parse(process.argv[2]));
process.stdout.write(JSON.stringify(report) + "\n");
